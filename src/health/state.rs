//! Rise and fall as a pure function, exactly HAProxy's health counter: a server's health
//! runs from 0 to `rise + fall - 1`; it is up while health >= rise. A success raises health
//! by one (a down server comes up when it reaches `rise`, then jumps to the top); a failure
//! lowers it while above `rise`, and at `rise` marks the server down (health 0). A server
//! starts up with health = rise, so the first failed check marks it down, as HAProxy does.
//! Also the server's admin state (ready, drain, maint) and what the workers must know.

/// Operational state from checks, as a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub health: u32,
    pub rise: u32,
    pub fall: u32,
}

/// A change of operational state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

/// Which interval the next check waits (`inter`, `fastinter`, `downinter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Steady,
    Transitional,
    Down,
}

impl Health {
    pub fn new(rise: u32, fall: u32) -> Health {
        Health {
            health: rise,
            rise: rise.max(1),
            fall: fall.max(1),
        }
    }

    fn top(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    pub fn success(&mut self) -> Option<Transition> {
        let was_up = self.is_up();
        if self.health < self.top() {
            self.health += 1;
        }
        if !was_up && self.health >= self.rise {
            self.health = self.top();
            return Some(Transition::Up);
        }
        None
    }

    pub fn failure(&mut self) -> Option<Transition> {
        if self.health > self.rise {
            self.health -= 1;
            return None;
        }
        let was_up = self.is_up();
        self.health = 0;
        was_up.then_some(Transition::Down)
    }

    /// `on-error sudden-death`: one more failure will mark the server down.
    pub fn sudden_death(&mut self) {
        if self.is_up() {
            self.health = self.rise;
        }
    }

    /// `on-error mark-down` and agent `down`: down now.
    pub fn force_down(&mut self) -> Option<Transition> {
        let was_up = self.is_up();
        self.health = 0;
        was_up.then_some(Transition::Down)
    }

    /// Agent `up`: up now.
    pub fn force_up(&mut self) -> Option<Transition> {
        let was_up = self.is_up();
        self.health = self.top();
        (!was_up).then_some(Transition::Up)
    }

    pub fn pace(&self) -> Pace {
        if self.health == 0 {
            Pace::Down
        } else if self.health == self.top() {
            Pace::Steady
        } else {
            Pace::Transitional
        }
    }

    /// "3/3 UP"-style status as HAProxy logs it.
    pub fn status(&self) -> String {
        if self.is_up() {
            format!("{}/{} UP", self.health - self.rise + 1, self.fall)
        } else {
            format!("{}/{} DOWN", self.health, self.rise)
        }
    }
}

/// Admin state, set by the agent (and later the runtime API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready,
    /// Up but takes no new connections.
    Drain,
    /// Maintenance: treated as down, not checked.
    Maint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_up_and_the_first_failure_marks_down() {
        let mut h = Health::new(2, 3);
        assert!(h.is_up());
        assert_eq!(h.failure(), Some(Transition::Down));
        assert!(!h.is_up());
        assert_eq!(h.pace(), Pace::Down);
    }

    #[test]
    fn rise_successes_bring_it_up_then_fall_failures_take_it_down() {
        let mut h = Health::new(2, 3);
        h.force_down();
        assert_eq!(h.success(), None);
        assert_eq!(h.success(), Some(Transition::Up));
        assert_eq!(h.pace(), Pace::Steady);
        assert_eq!(h.status(), "3/3 UP");
        assert_eq!(h.failure(), None);
        assert_eq!(h.pace(), Pace::Transitional);
        assert_eq!(h.failure(), None);
        assert_eq!(h.failure(), Some(Transition::Down));
    }

    #[test]
    fn a_counter_not_consecutive_results() {
        // HAProxy's counter: F F S F F with fall 3 goes down (a run of "consecutive" would not).
        let mut h = Health::new(2, 3);
        h.force_up();
        assert_eq!(h.failure(), None);
        assert_eq!(h.failure(), None);
        assert_eq!(h.success(), None);
        assert_eq!(h.failure(), None);
        assert_eq!(h.failure(), Some(Transition::Down));
    }

    #[test]
    fn flapping_needs_rise_to_come_back() {
        let mut h = Health::new(3, 2);
        h.force_down();
        assert_eq!(h.success(), None);
        assert_eq!(h.failure(), None);
        assert_eq!(h.success(), None);
        assert_eq!(h.success(), None);
        assert_eq!(h.success(), Some(Transition::Up));
    }

    #[test]
    fn sudden_death() {
        let mut h = Health::new(2, 3);
        h.force_up();
        h.sudden_death();
        assert!(h.is_up());
        assert_eq!(h.failure(), Some(Transition::Down));
    }
}

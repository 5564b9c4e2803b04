#!/usr/bin/env bash
# The test command of README.md and of CI: installs what the tests need (from Debian's
# packages: haproxy, and the MariaDB, Redis and nginx that the health-check tests start,
# openssl to make the certificates of the TLS check tests, promtool to check the
# Prometheus exporter, headless Chromium for the stats page),
# then runs the formatting check, clippy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package; the services are started by the tests themselves, on loopback.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
have haproxy || need+=(haproxy)
have mariadbd || need+=(mariadb-server)
have redis-server || need+=(redis-server)
have nginx || need+=(nginx-light)
have openssl || need+=(openssl)
have promtool || need+=(prometheus)
have chromium || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: install Rust from https://rustup.rs first" >&2
    exit 1
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "==> cargo test"
cargo test --all-targets
echo "==> all tests passed"

#!/bin/sh
# Chromium and ChromeDriver for the browser test (tests/test_browser.py), from Debian's packages.
# `make test` runs this first. Nothing happens where both are on PATH already; as root on Debian
# (CI, a container) it installs them with apt-get; anywhere else it says what to install.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "Installing Debian's chromium and chromium-driver for the browser test" >&2
    apt-get install -y -qq chromium chromium-driver >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
    exit 0
fi
cat >&2 <<'MSG'
tools/ensure-chromium.sh: the browser test needs `chromium` and `chromedriver` on PATH.
On Debian: sudo apt-get install chromium chromium-driver
(Ubuntu's chromium is a snap: install chromium and its chromedriver from the snap, or Google Chrome
with the matching ChromeDriver, and put both on PATH.)
MSG
exit 1

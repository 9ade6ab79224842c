#!/usr/bin/env bash
# Sourced by .ci/run (set -euo pipefail): headless Chromium for the browser tests (tests/test_browser.py).
# Debian's package, never a Playwright browser download. Idempotent: nothing to do when it is there.
if [[ ! -x /usr/bin/chromium ]]; then
    echo "browser.sh: installing Debian's chromium" >&2
    if [[ "$(id -u)" -eq 0 ]]; then _apt=(); else _apt=(sudo); fi
    "${_apt[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${_apt[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    unset _apt
fi
echo "browser.sh: $(/usr/bin/chromium --version 2>/dev/null)" >&2
# The browser tests fail instead of skipping when the browser is missing.
export INTERVIEW_REQUIRE_BROWSER=1

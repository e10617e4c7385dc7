#!/usr/bin/env bash
# Make sure the browser tests (tests/browser, marker `browser`) have a browser: Debian's chromium and
# chromium-driver packages. Installs them with apt-get when running as root and they are missing;
# otherwise prints loudly what is missing. Never downloads a Playwright browser (`playwright
# install` does not work here). Always exits 0: without a browser the browser tests themselves
# FAIL loudly, unless SAGD_SKIP_BROWSER=1 makes them skip (docs/WEB.md).
set -u

CHROMIUM="${SAGD_CHROMIUM:-/usr/bin/chromium}"
PACKAGES=(chromium chromium-driver)

have_browser() {
    [ -x "$CHROMIUM" ] && command -v chromedriver >/dev/null 2>&1
}

shout() {
    local bar="!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    printf '\n%s\n!!! %s\n%s\n\n' "$bar" "$*" "$bar" >&2
}

if have_browser; then
    echo "ensure_browser: $("$CHROMIUM" --version 2>/dev/null | head -n1) at $CHROMIUM"
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_browser: installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${PACKAGES[@]}" \
        || { apt-get update && apt-get install -y --no-install-recommends "${PACKAGES[@]}"; }
    if have_browser; then
        echo "ensure_browser: installed $("$CHROMIUM" --version 2>/dev/null | head -n1)"
        exit 0
    fi
    shout "ensure_browser: apt-get could not install ${PACKAGES[*]}: the browser tests will FAIL" \
        "(set SAGD_SKIP_BROWSER=1 to skip them)"
    exit 0
fi

shout "ensure_browser: no browser at $CHROMIUM (or no chromedriver) and cannot install it" \
    "(not root, or no apt-get). Install Debian's ${PACKAGES[*]} (sudo apt-get install -y" \
    "${PACKAGES[*]}) or point SAGD_CHROMIUM at a Chromium. Without it the browser tests FAIL;" \
    "SAGD_SKIP_BROWSER=1 skips them."
exit 0

# Sourced by .ci/run: headless Chromium for the status page's browser test
# (statuspage.TestPageInChromium). Installs Debian's chromium when it is missing, then
# makes the test fail rather than skip if the browser is still not there.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the status page test"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || echo "chromium: not installed; statuspage.TestPageInChromium will fail"
export BULKMAN_REQUIRE_CHROMIUM=1

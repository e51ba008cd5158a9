#!/usr/bin/env bash
# Trunk post-build hook: writes the app shell's file list and a build hash into sw.js, so the
# service worker precaches exactly this build and a new build is a new worker (its own cache).
# Models (models/, *.gguf) are never precached: they live in the worker's model store.
#   TRUNK_STAGING_DIR=dist-staging bash scripts/precache.sh    (Trunk sets the variable)
set -euo pipefail
dir=${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}
cd "$dir"
test -f sw.js || { echo "precache.sh: no sw.js in $dir" >&2; exit 1; }
# The app's Content-Security-Policy (a <meta> in index.html, also sent as a header: docs/web-app.md)
# allows no inline script or style: fail the build if Trunk (or an edit) put one in the page, e.g.
# `trunk serve` without `no_autoreload` (Trunk.toml) injects an inline live-reload script.
csp_fail() { echo "precache.sh: index.html: $1 (the Content-Security-Policy forbids it; see docs/web-app.md)" >&2; exit 1; }
grep -qi '<meta http-equiv="Content-Security-Policy"' index.html || csp_fail 'no <meta http-equiv="Content-Security-Policy">'
! grep -Pzoi '<script(?![^>]*\bsrc\s*=)[^>]*>' index.html >/dev/null || csp_fail 'an inline <script> (no src)'
! grep -qi '<style' index.html || csp_fail 'an inline <style>'
! grep -Pqi '<[a-z][^>]*\sstyle\s*=' index.html || csp_fail 'a style="..." attribute'
! grep -Pqi '<[a-z][^>]*\son[a-z]+\s*=' index.html || csp_fail 'an inline event handler (on...=)'
files=$(find . -type f ! -name sw.js ! -path './models/*' ! -name '*.gguf' ! -name '*.sha256' | sed 's|^\./||' | LC_ALL=C sort)
build=$(for f in $files; do sha256sum "$f"; done | sha256sum | cut -c1-16)
list=$(for f in $files; do printf '"%s",' "$f"; done)
list="\"./\",${list%,}"
sed -i -e "s|^const PRECACHE = \[/\*PRECACHE\*/\];|const PRECACHE = [$list];|" \
       -e "s|^const BUILD = \"/\*BUILD\*/\";|const BUILD = \"$build\";|" sw.js
# The same hash in the page, for "About this device" (index.html is in the list above; writing it
# afterwards leaves the hash a function of the build's sources).
sed -i -e "s|<meta name=\"edgecap-build\" content=\"dev\" />|<meta name=\"edgecap-build\" content=\"$build\" />|" index.html
grep -q "^const BUILD = \"$build\";" sw.js || { echo "precache.sh: sw.js lacks the BUILD/PRECACHE lines" >&2; exit 1; }
echo "precache.sh: build $build, $(echo "$files" | wc -w) files"

#!/usr/bin/env bash
# Vendor MathJax 3 (npm registry) into _vendor/mathjax/ so the built book renders math offline.
# The result is committed (about 3 MB), so builds and tests never need npm or the network.
# Run from the repo root only to upgrade MathJax.
set -euo pipefail
VER=3.2.2                       # stay on 3.x: npm "latest" is 4.x, which Sphinx 7 does not target
DEST=_vendor/mathjax
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "mathjax@${VER}" --silent >/dev/null && tar xzf "mathjax-${VER}.tgz")
E="$tmp/package/es5"
rm -rf "$DEST"
mkdir -p "$DEST/output/chtml/fonts" "$DEST/input/tex"
cp    "$E/tex-mml-chtml.js"            "$DEST/"
cp -r "$E/output/chtml/fonts/woff-v2"  "$DEST/output/chtml/fonts/"
cp -r "$E/input/tex/extensions"        "$DEST/input/tex/"
cp -r "$E/ui" "$E/a11y"                "$DEST/"
cp    "$tmp/package/LICENSE"           "$DEST/"
echo "MathJax ${VER} -> ${DEST} ($(du -sh "$DEST" | cut -f1))"

#!/usr/bin/env bash
# captioning's default data: Noto Color Emoji, the named real objects of the object scenes
# (apps/captioning/objects.py). Best effort (root + apt-get); without it, training on the
# default data stops with an error naming the package, and its tests fail.
set -uo pipefail
FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ -f "$FONT" ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        fonts-noto-color-emoji) >/dev/null 2>&1 \
        || echo "warning: fonts-noto-color-emoji not installed: captioning's object scenes need it"
else
    echo "warning: fonts-noto-color-emoji is missing (install it as root: apt-get install" \
         "fonts-noto-color-emoji): captioning's object scenes need it"
fi
exit 0

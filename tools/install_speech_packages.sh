#!/usr/bin/env bash
# Best effort: the Debian packages of speech_to_text's synthetic voices and real test speech.
#   espeak-ng + mbrola voices (MBROLA is in Debian's contrib/non-free: enabled here in a
#   separate sources file when apt cannot see it), flite, festival + English voices, and
#   pocketsphinx-testdata (12 transcribed real recordings). Needs root and apt-get; prints one
#   warning line per group it could not install and exits 0.
set -uo pipefail
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "warning: not root with apt-get: install espeak-ng mbrola mbrola-us1 mbrola-us2" \
         "mbrola-us3 mbrola-en1 flite festival festvox-kallpc16k festvox-kdlpc16k" \
         "festvox-us-slt-hts pocketsphinx-testdata by hand (speech_to_text engine tests fail without)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
main=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
      pocketsphinx-testdata)
mbrola=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1)
need_main=0
for package in "${main[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || need_main=1
done
need_mbrola=0
for package in "${mbrola[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || need_mbrola=1
done
[ "$need_main" = 0 ] && [ "$need_mbrola" = 0 ] && exit 0
apt-get update -qq >/dev/null 2>&1 || true
if [ "$need_main" = 1 ]; then
    apt-get install -y -qq --no-install-recommends "${main[@]}" >/dev/null 2>&1 \
        || echo "warning: could not install ${main[*]}"
fi
if [ "$need_mbrola" = 1 ]; then
    if ! apt-cache policy mbrola-us1 2>/dev/null | grep -q "Candidate: [0-9]"; then
        # the same mirror as the machine's main Debian source, other components
        codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
        [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' \
            /etc/apt/sources.list 2>/dev/null)
        if [ -n "$codename" ] && [ -n "$mirror" ] \
                && [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$mirror" "$codename" > /etc/apt/sources.list.d/rnnkit-speech-nonfree.sources
            apt-get update -qq >/dev/null 2>&1 || true
        fi
    fi
    apt-get install -y -qq --no-install-recommends "${mbrola[@]}" >/dev/null 2>&1 \
        || echo "warning: could not install ${mbrola[*]} (Debian contrib/non-free)"
fi
exit 0

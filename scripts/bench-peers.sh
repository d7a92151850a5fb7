#!/usr/bin/env bash
# Installs the command-line peers that bench compares pidwatch with:
#  - procps `pidwait` and coreutils `tail`, from the machine's own Debian
#    release through apt-get (when missing);
#  - util-linux `waitpid` from Debian trixie (package util-linux-extra) with
#    trixie's libc6, both unpacked with dpkg-deb -x into a private folder and
#    run through trixie's own ld-linux-x86-64.so.2. Nothing of trixie is
#    installed system-wide: apt reads a private sources list, lists and cache.
#
# Usage: scripts/bench-peers.sh [DIR]   (default: target/bench-peers)
set -euo pipefail
cd "$(dirname "$0")/.."

dest=$(realpath -m "${1:-target/bench-peers}")
mirror=${BENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

missing=()
command -v pidwait >/dev/null 2>&1 || missing+=(procps)
command -v tail >/dev/null 2>&1 || missing+=(coreutils)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
[ -f "$keyring" ] || missing+=(debian-archive-keyring)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench-peers: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

loader="$dest/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
waitpid="$dest/root/usr/bin/waitpid"
if [ -x "$waitpid" ] && [ -e "$loader" ]; then
  echo "bench-peers: $waitpid is already unpacked"
  exit 0
fi

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$dest/debs"
echo "deb [signed-by=$keyring] $mirror trixie main" >"$apt_dir/sources.list"
apt_options=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_options[@]}" update -qq
(cd "$dest/debs" && apt-get "${apt_options[@]}" download util-linux-extra libc6)

rm -rf "$dest/root"
for deb in "$dest"/debs/*.deb; do
  dpkg-deb -x "$deb" "$dest/root"
done

version=$("$loader" --library-path "$dest/root/usr/lib/x86_64-linux-gnu" "$waitpid" --version)
echo "bench-peers: $version, in $dest/root"

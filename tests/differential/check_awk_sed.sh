#!/bin/sh
# Runs awk_sed_cases.txt twice — with GNU awk/sed and with a wasi-coreutils
# host build — in fresh copies of fixtures/awk_sed/, and reports any case
# whose stdout, exit status or written files differ.
# usage: check_awk_sed.sh /path/to/wasi-coreutils [cases-file]
set -u
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
CASES=${2:-$HERE/awk_sed_cases.txt}
FIX=$HERE/fixtures/awk_sed
export LC_ALL=C
pass=0
fail=0
TAB=$(printf '\t')
while IFS="$TAB" read -r cmd desc; do
  case "$cmd" in ''|'#'*) continue ;; esac
  d1=$(mktemp -d) && d2=$(mktemp -d)
  cp -R "$FIX/." "$d1" && cp -R "$FIX/." "$d2"
  exp=$(cd "$d1" && sh -c "awk() { gawk \"\$@\"; }; $cmd" 2>/dev/null; echo "rc=$?")
  got=$(cd "$d2" && sh -c "awk() { '$BIN' awk \"\$@\"; }; sed() { '$BIN' sed \"\$@\"; }; $cmd" 2>/dev/null; echo "rc=$?")
  if [ "$exp" = "$got" ] && diff -r "$d1" "$d2" >/dev/null; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL [$desc]: $cmd"
  fi
  rm -rf "$d1" "$d2"
done < "$CASES"
echo "pass=$pass fail=$fail"
[ "$fail" -eq 0 ]

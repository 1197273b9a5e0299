#!/usr/bin/env bash
# Drives netctl's bash completion (etc/completion/netctl.bash) as bash does: COMP_WORDS,
# COMP_CWORD, COMP_LINE and COMP_POINT set, _netctl called, COMPREPLY checked.
#
#   completion_test.sh offline   # subcommands, options, values, --socket files; no daemon
#                                # reachable: no names, no output on stderr, fast
#   completion_test.sh live      # the real cnetd (as root, inside private namespaces: meson runs
#                                # it under `unshare --net --mount --pid`): network and namespace
#                                # names completed live through --socket, --socket= and CNETD_SOCKET
# Env: NETCTL_BIN, CNETD_BIN, CNETD_SRC_DIR (tests/cli/meson.build sets them).
set -uo pipefail
mode=${1:?usage: completion_test.sh offline|live}
src=${CNETD_SRC_DIR:?}
netctl_dir=$(dirname "${NETCTL_BIN:?}")
export PATH=$netctl_dir:$PATH
work=$(mktemp -d)
daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]]; then kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid"; fi
  for f in "$work"/netns/*; do [[ -e $f ]] && umount -l "$f" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
# A socket nobody listens on: the offline cases must not depend on a cnetd on this machine.
export CNETD_SOCKET=$work/absent.sock

# shellcheck source=/dev/null
source "$src/etc/completion/netctl.bash"
failures=0

# comp LINE: completes LINE (the command line up to the cursor; a trailing space starts a new
# word) and sets REPLY to the sorted candidates, space-separated; stderr of the completion goes
# to $work/stderr.
comp() {
  local line=$1
  read -ra COMP_WORDS <<<"$line"
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMPREPLY=()
  _netctl 2>"$work/stderr"
  REPLY=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ')
  REPLY=${REPLY% }
}

# expect LINE WANT: the candidates for LINE are exactly WANT (sorted, space-separated).
expect() {
  local want
  want=$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort | tr '\n' ' ')
  want=${want% }
  comp "$1"
  if [[ $REPLY == "$want" ]]; then
    echo "ok   [$1] -> $REPLY"
  else
    echo "FAIL [$1]: got '$REPLY', want '$want'"
    failures=$((failures + 1))
  fi
  if [[ -s $work/stderr ]]; then
    echo "FAIL [$1]: printed on stderr: $(cat "$work/stderr")"
    failures=$((failures + 1))
  fi
}

# The top-level commands as `netctl --help` lists them, each with the summary `netctl X --help`
# prints first (main.cpp's table builds only the invoked command: both must agree).
top_level() {
  netctl --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'
}
check_summaries() {
  local cmd listed own
  for cmd in $(top_level); do
    listed=$(netctl --help | awk -v c="$cmd" '$1 == c {$1 = ""; sub(/^ +/, ""); print}')
    own=$(netctl "$cmd" --help | head -1)
    if [[ $listed != "$own" ]]; then
      echo "FAIL summary of $cmd: --help lists '$listed', '$cmd --help' says '$own'"
      failures=$((failures + 1))
    fi
  done
}

offline() {
  local commands
  commands=$(top_level | tr '\n' ' ')
  [[ $commands == *network* && $commands == *netns* ]] || {
    echo "FAIL: netctl --help lists no commands: '$commands'"
    failures=$((failures + 1))
  }
  check_summaries
  expect "netctl " "$commands"
  expect "netctl net" "network netns"
  expect "netctl network " "ls list inspect create rm remove connect disconnect"
  expect "netctl --json network c" "create connect"
  expect "netctl netns " "create ls list rm"
  expect "netctl network create --su" "--subnet"
  expect "netctl network connect -" \
    "-h --help --name --ip --ip6 --gw-priority --mac --alias -p --publish --socket --json --timeout --version"
  expect "netctl --ti" "--timeout"
  # An option's value is not a subcommand: nothing is offered for it, and after it the command
  # goes on.
  expect "netctl network create --driver " ""
  expect "netctl network create --subnet 10.1.0.0/24 --ip" "--ip-range --ipv6"
  expect "netctl --timeout 2 network l" "ls list"
  # --socket's value is a file, also as --socket=.
  touch "$work/sock-a" "$work/sock-b"
  expect "netctl --socket $work/sock-" "$work/sock-a $work/sock-b"
  expect "netctl --socket = $work/sock-" "$work/sock-a $work/sock-b"
  # No daemon: no names, nothing on stderr, and quickly.
  local start end
  start=$(date +%s%N)
  expect "netctl network inspect " ""
  expect "netctl network connect x " ""
  expect "netctl netns rm " ""
  end=$(date +%s%N)
  if (((end - start) / 1000000 > 2000)); then
    echo "FAIL: three completions without a daemon took $(((end - start) / 1000000)) ms"
    failures=$((failures + 1))
  fi
  # A word after a complete command line: nothing (network connect takes NETWORK TARGET).
  expect "netctl network connect n1 ns1 " ""
  expect "netctl dns " ""
  zsh_offline
}

# zsh's _netctl (etc/completion/_netctl) with compadd and _files stubbed: what it would offer.
zsh_expect() {  # words (a zsh array literal), want
  local got
  got=$(zsh -f -c 'compadd() { print -r -- "${@[2,-1]}" }; _files() { print __files__ }
    words='"$1"'; CURRENT=${#words}; source "$0"' "$src/etc/completion/_netctl" 2>&1)
  if [[ $got == "$2" ]]; then
    echo "ok   zsh $1 -> $got"
  else
    echo "FAIL zsh $1: got '$got', want '$2'"
    failures=$((failures + 1))
  fi
}

zsh_offline() {
  if ! command -v zsh >/dev/null; then
    echo "zsh not installed: its completion not checked (tools/install-deps.sh installs it)"
    return
  fi
  zsh_expect '(netctl network "")' "ls list inspect create rm remove connect disconnect"
  zsh_expect '(netctl network create --su)' "--subnet"
  zsh_expect '(netctl --socket "")' "__files__"
}

live() {
  local sock=$work/cnetd.sock
  mkdir -p "$work/netns"
  echo "firewall: none" >"$work/cnetd.yaml"
  "${CNETD_BIN:?}" --config "$work/cnetd.yaml" --socket "$sock" --state-dir "$work/state" \
    --netns-dir "$work/netns" --log-level warning >"$work/cnetd.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 200); do netctl --socket "$sock" info >/dev/null 2>&1 && break; sleep 0.05; done
  netctl --socket "$sock" network create --subnet 192.0.2.0/26 alpha >/dev/null &&
    netctl --socket "$sock" network create --subnet 192.0.2.64/26 albatross >/dev/null &&
    netctl --socket "$sock" network create --subnet 192.0.2.128/26 beta >/dev/null &&
    netctl --socket "$sock" netns create ns-one >/dev/null &&
    netctl --socket "$sock" netns create ns-two >/dev/null || {
    echo "FAIL: setting up the daemon's networks and namespaces"; cat "$work/cnetd.log"
    exit 1
  }
  # Every network the daemon has (its default "bridge" network too, when present).
  local nets
  nets=$(netctl --socket "$sock" --json network ls | python3 -c \
    'import json,sys; print(" ".join(n["Name"] for n in json.load(sys.stdin)))')
  expect "netctl --socket $sock network inspect " "$nets"
  expect "netctl --socket $sock network inspect al" "alpha albatross"
  expect "netctl --socket $sock network rm b" "beta $(tr ' ' '\n' <<<"$nets" | grep '^b' | grep -vx beta | tr '\n' ' ')"
  expect "netctl --socket $sock network connect alp" "alpha"
  expect "netctl --socket $sock network connect alpha " "ns-one ns-two"
  expect "netctl --socket $sock network disconnect beta ns-t" "ns-two"
  expect "netctl --socket $sock netns rm " "ns-one ns-two"
  expect "netctl --socket = $sock netns rm ns-o" "ns-one"
  # A new name is not completed from the daemon.
  expect "netctl --socket $sock netns create " ""
  expect "netctl --socket $sock network create " ""
  # The socket from the environment, as netctl itself reads it.
  CNETD_SOCKET=$sock expect "netctl network inspect be" "beta"
  # The daemon gone: the names go with it, silently.
  kill -TERM "$daemon_pid"
  wait "$daemon_pid"
  daemon_pid=
  expect "netctl --socket $sock network inspect al" ""
}

case $mode in
  offline) offline ;;
  live) live ;;
  *) echo "usage: completion_test.sh offline|live" >&2; exit 2 ;;
esac
if ((failures)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"

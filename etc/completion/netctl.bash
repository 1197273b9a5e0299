# bash completion for netctl, cnetd's command-line client (docs/netctl.md "Completion").
# Installed by meson to bash-completion's completionsdir (Debian:
# /usr/share/bash-completion/completions/netctl), loaded on the first <Tab> after `netctl`.
#
# netctl answers itself: `netctl __complete WORD... CUR` prints the candidates (subcommands,
# options, network and namespace names read live from cnetd through --socket or CNETD_SOCKET),
# so this file never goes stale when commands are added. An unreachable daemon gives no names and
# no message; a daemon that does not answer within 0.5 s is left alone.

_netctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} i w
    local -a words=()
    # bash splits `--socket=/run/x` at '=' (COMP_WORDBREAKS): glue such words back together.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == "=" && ${#words[@]} -gt 0 ]]; then
            words[-1]+="="
            ((i + 1 < COMP_CWORD)) && words[-1]+=${COMP_WORDS[++i]}
        else
            words+=("$w")
        fi
    done
    # The cursor on a value after `--opt=`: ask as for `--opt VALUE`.
    if [[ $cur == "=" ]]; then
        cur=""
    elif ((${#words[@]})) && [[ ${words[-1]} == *= ]]; then
        words[-1]=${words[-1]%=}
    fi
    local -a out=()
    mapfile -t out < <("${COMP_WORDS[0]}" __complete "${words[@]}" "$cur" 2>/dev/null)
    if [[ ${out[0]-} == __files__ ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        compopt -o filenames 2>/dev/null
    else
        COMPREPLY=("${out[@]}")
    fi
}
complete -F _netctl netctl

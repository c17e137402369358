# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_keygate_global_optspecs
    string join \n config= set= q/quiet h/help V/version
end

function __fish_keygate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_keygate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_keygate_using_subcommand
    set -l cmd (__fish_keygate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c keygate -n "__fish_keygate_needs_command" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_needs_command" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_needs_command" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_needs_command" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_needs_command" -s V -l version -d 'Print version'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "up" -d 'Get a certificate and a token, serve, and print how to call it (no config needed)'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "serve" -d 'Serve /auth, /health and /metrics (with --upstream: protect a web app) until SIGTERM or SIGINT'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "check" -d 'Check the config, certificate, token store and listen addresses; exit 1 if a check fails'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "unit" -d 'Print a systemd service running `keygate serve` (hardened with --system) and, for a file audit log, a logrotate snippet'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "users" -d 'Add, change and remove the people who sign in to the portal'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "groups" -d 'Make groups and choose their members'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "access" -d 'Explain who may enter which service'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "audit" -d 'Show the people\'s audit trail: sign-ins, refusals, service entries, admin changes'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "store" -d 'Back up the store browser sessions live in'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c keygate -n "__fish_keygate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand up" -l listen -d 'Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]' -r
complete -c keygate -n "__fish_keygate_using_subcommand up" -l upstream -d 'Put sign-in in front of the web app at URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]' -r
complete -c keygate -n "__fish_keygate_using_subcommand up" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand up" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand up" -l public -d 'Listen on every interface ([::]:8443, which takes IPv4 too), not only loopback'
complete -c keygate -n "__fish_keygate_using_subcommand up" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand up" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l listen -d 'Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]' -r
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l cert-id -d 'Serve this managed certificate [default: server.cert_id, "default"]' -r
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l upstream -d 'Proxy authorized requests to URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]' -r
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l plain-http -d 'Serve plain HTTP instead of HTTPS; loopback addresses only [default: server.plain_http]'
complete -c keygate -n "__fish_keygate_using_subcommand serve" -l danger-plain-http-non-loopback -d 'Allow plain HTTP on addresses other hosts can reach: tokens then cross the network in clear text'
complete -c keygate -n "__fish_keygate_using_subcommand serve" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand serve" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand check" -l listen -d 'Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]' -r
complete -c keygate -n "__fish_keygate_using_subcommand check" -l cert-id -d 'Serve this managed certificate [default: server.cert_id, "default"]' -r
complete -c keygate -n "__fish_keygate_using_subcommand check" -l upstream -d 'Proxy authorized requests to URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]' -r
complete -c keygate -n "__fish_keygate_using_subcommand check" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand check" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand check" -l plain-http -d 'Serve plain HTTP instead of HTTPS; loopback addresses only [default: server.plain_http]'
complete -c keygate -n "__fish_keygate_using_subcommand check" -l danger-plain-http-non-loopback -d 'Allow plain HTTP on addresses other hosts can reach: tokens then cross the network in clear text'
complete -c keygate -n "__fish_keygate_using_subcommand check" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand check" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand check" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l listen -d 'Listen on ADDR (IP:PORT; repeatable) [default: server.listen, 127.0.0.1:8443]' -r
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l cert-id -d 'Serve this managed certificate [default: server.cert_id, "default"]' -r
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l upstream -d 'Proxy authorized requests to URL (http://HOST:PORT on loopback, a private address or a .internal name, or unix:/PATH) [default: server.upstream]' -r
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l system -d 'For a system-wide install (root; KEYGATE_HOME, else /var/lib/keygate) instead of the current user\'s systemd'
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l plain-http -d 'Serve plain HTTP instead of HTTPS; loopback addresses only [default: server.plain_http]'
complete -c keygate -n "__fish_keygate_using_subcommand unit" -l danger-plain-http-non-loopback -d 'Allow plain HTTP on addresses other hosts can reach: tokens then cross the network in clear text'
complete -c keygate -n "__fish_keygate_using_subcommand unit" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand unit" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "add" -d 'Add a person; prints a temporary password, to be changed at their first sign-in'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "list" -d 'List people'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "show" -d 'Show one person'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "passwd" -d 'Set a person\'s password (prompted twice) or, with --temporary, print a new temporary one; ends their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "disable" -d 'Refuse a person\'s sign-ins and end their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "enable" -d 'Let a disabled person sign in again'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "remove" -d 'Remove a person, their memberships and their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "bootstrap-admin" -d 'Make the first administrator (member of `admins`), prompting twice for the password; does nothing once `admins` has members'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "totp" -d 'Enroll a TOTP second factor: prints the otpauth URI, its secret and ten recovery codes once'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "sessions" -d 'List a person\'s browser sessions (everyone\'s without NAME); --end ends them'
complete -c keygate -n "__fish_keygate_using_subcommand users; and not __fish_seen_subcommand_from add list show passwd disable enable remove bootstrap-admin totp sessions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -l email -d 'Where password-reset links go' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -l group -d 'Also add them to GROUP (repeatable; the groups must exist)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from list" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from list" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from show" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from show" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from show" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -l temporary -d 'Make a temporary password instead, to be changed at the next sign-in'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the password from the first line of standard input'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from disable" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from disable" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from disable" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from enable" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from enable" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from enable" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from remove" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from remove" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -l password-stdin -d 'Read the password from the first line of standard input'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from bootstrap-admin" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -l remove -d 'Remove the second factor and recovery codes instead'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from totp" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -l end -d 'End the sessions listed'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from sessions" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a person; prints a temporary password, to be changed at their first sign-in'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "list" -d 'List people'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one person'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Set a person\'s password (prompted twice) or, with --temporary, print a new temporary one; ends their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Refuse a person\'s sign-ins and end their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Let a disabled person sign in again'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a person, their memberships and their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "bootstrap-admin" -d 'Make the first administrator (member of `admins`), prompting twice for the password; does nothing once `admins` has members'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "totp" -d 'Enroll a TOTP second factor: prints the otpauth URI, its secret and ten recovery codes once'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "sessions" -d 'List a person\'s browser sessions (everyone\'s without NAME); --end ends them'
complete -c keygate -n "__fish_keygate_using_subcommand users; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "add" -d 'Make a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "list" -d 'List groups and their members'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "remove" -d 'Remove a group (its members stay, without it)'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "add-member" -d 'Add people to a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "remove-member" -d 'Take people out of a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and not __fish_seen_subcommand_from add list remove add-member remove-member help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add" -l description -d 'What it is for' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from list" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from list" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add-member" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add-member" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add-member" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from add-member" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove-member" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove-member" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove-member" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from remove-member" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "add" -d 'Make a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "list" -d 'List groups and their members'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a group (its members stay, without it)'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "add-member" -d 'Add people to a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "remove-member" -d 'Take people out of a group'
complete -c keygate -n "__fish_keygate_using_subcommand groups; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "explain" -d 'Say whether a person may enter a service, and which group lets them (or why not)'
complete -c keygate -n "__fish_keygate_using_subcommand access; and not __fish_seen_subcommand_from explain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -l user -d 'The person' -r
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -l service -d 'The service ([service.NAME])' -r
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Say whether a person may enter a service, and which group lets them (or why not)'
complete -c keygate -n "__fish_keygate_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l user -d 'Only this person\'s lines' -r
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l since -d 'How far back, e.g. 24h or 30d' -r
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l limit -d 'At most this many lines, newest first' -r
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand audit" -l json -d 'Print JSON'
complete -c keygate -n "__fish_keygate_using_subcommand audit" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand audit" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -f -a "backup" -d 'Write a consistent copy of the store to FILE (0600), while a server may be using it'
complete -c keygate -n "__fish_keygate_using_subcommand store; and not __fish_seen_subcommand_from backup help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from backup" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from backup" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from backup" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from backup" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "backup" -d 'Write a consistent copy of the store to FILE (0600), while a server may be using it'
complete -c keygate -n "__fish_keygate_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c keygate -n "__fish_keygate_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from explain" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from explain" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from explain" -l json -d 'Print JSON instead of a table'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from paths" -l config -d 'Read this config file instead of the default location' -r -F
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from paths" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from paths" -l json -d 'Print JSON instead of text'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from paths" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from paths" -s h -l help -d 'Print help'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c keygate -n "__fish_keygate_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "up" -d 'Get a certificate and a token, serve, and print how to call it (no config needed)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "serve" -d 'Serve /auth, /health and /metrics (with --upstream: protect a web app) until SIGTERM or SIGINT'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "check" -d 'Check the config, certificate, token store and listen addresses; exit 1 if a check fails'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "unit" -d 'Print a systemd service running `keygate serve` (hardened with --system) and, for a file audit log, a logrotate snippet'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "users" -d 'Add, change and remove the people who sign in to the portal'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "groups" -d 'Make groups and choose their members'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "access" -d 'Explain who may enter which service'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "audit" -d 'Show the people\'s audit trail: sign-ins, refusals, service entries, admin changes'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "store" -d 'Back up the store browser sessions live in'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c keygate -n "__fish_keygate_using_subcommand help; and not __fish_seen_subcommand_from up serve check unit users groups access audit store config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "add" -d 'Add a person; prints a temporary password, to be changed at their first sign-in'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "list" -d 'List people'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "show" -d 'Show one person'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "passwd" -d 'Set a person\'s password (prompted twice) or, with --temporary, print a new temporary one; ends their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "disable" -d 'Refuse a person\'s sign-ins and end their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "enable" -d 'Let a disabled person sign in again'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "remove" -d 'Remove a person, their memberships and their sessions'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "bootstrap-admin" -d 'Make the first administrator (member of `admins`), prompting twice for the password; does nothing once `admins` has members'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "totp" -d 'Enroll a TOTP second factor: prints the otpauth URI, its secret and ten recovery codes once'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from users" -f -a "sessions" -d 'List a person\'s browser sessions (everyone\'s without NAME); --end ends them'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from groups" -f -a "add" -d 'Make a group'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from groups" -f -a "list" -d 'List groups and their members'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from groups" -f -a "remove" -d 'Remove a group (its members stay, without it)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from groups" -f -a "add-member" -d 'Add people to a group'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from groups" -f -a "remove-member" -d 'Take people out of a group'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "explain" -d 'Say whether a person may enter a service, and which group lets them (or why not)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "backup" -d 'Write a consistent copy of the store to FILE (0600), while a server may be using it'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c keygate -n "__fish_keygate_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "paths" -d 'Print the paths keygate uses'

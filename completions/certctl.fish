# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_certctl_global_optspecs
    string join \n config= set= q/quiet h/help V/version
end

function __fish_certctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_certctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_certctl_using_subcommand
    set -l cmd (__fish_certctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c certctl -n "__fish_certctl_needs_command" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_needs_command" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_needs_command" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_needs_command" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_needs_command" -s V -l version -d 'Print version'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "ensure" -d 'Make sure a valid certificate for the names is published; issue one only if needed'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "issue" -d 'Issue and publish a new certificate, even if the published one is fine'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "inspect" -d 'Show a certificate\'s names, validity, key and problems: a file, a managed id, or what a server presents'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "renew" -d 'Renew every managed certificate that is due; silent when nothing is (for cron)'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "status" -d 'List every managed certificate, its expiry and renewal time; exit 1 if any is due or broken'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "doctor" -d 'Check modes, owners, links, stale files, key/cert match, expiry and the CA; --fix repairs'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "schedule" -d 'Print a crontab line or systemd units that run `certctl renew`'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "ca" -d 'Show or export the CA certificate that clients must trust'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "trust" -d 'Print the commands that make this machine\'s browsers and tools trust the CA'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c certctl -n "__fish_certctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l id -d 'The managed certificate to act on [default: cert.id, "default"]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l method -d 'How to obtain it: auto, tailscale, mkcert, local-ca or self-signed [default: cert.method, auto]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l key -d 'Key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048 or rsa-3072 [default: cert.key]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l days -d 'Lifetime in days of certificates keygate signs (at most 825) [default: cert.days, 90]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l wait -d 'If another run holds the lock, wait up to SECS seconds instead of exiting 75' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l dry-run -d 'Show the decision (each method, available or not and why) without writing anything'
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand ensure" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l id -d 'The managed certificate to act on [default: cert.id, "default"]' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l method -d 'How to obtain it: auto, tailscale, mkcert, local-ca or self-signed [default: cert.method, auto]' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l key -d 'Key type: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048 or rsa-3072 [default: cert.key]' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l days -d 'Lifetime in days of certificates keygate signs (at most 825) [default: cert.days, 90]' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l wait -d 'If another run holds the lock, wait up to SECS seconds instead of exiting 75' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l dry-run -d 'Show the decision (each method, available or not and why) without writing anything'
complete -c certctl -n "__fish_certctl_using_subcommand issue" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand issue" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand issue" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -l key -d 'The private key that belongs to FILE, to check that they match' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -l id -d 'A managed certificate instead of a file' -r
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l id -d 'Renew only this certificate [default: every managed certificate]' -r
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l deploy-hook -d 'Shell command to run after each renewal, with KEYGATE_CERT_ID, KEYGATE_CERT_DIR, KEYGATE_CERT_FILE, KEYGATE_KEY_FILE, KEYGATE_FULLCHAIN_FILE, KEYGATE_RENEWED_NAMES set' -r
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l wait -d 'If another run holds the lock, wait up to SECS seconds instead of exiting 75' -r
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l all -d 'Renew every managed certificate that is due (the default)'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l force -d 'Renew even when not due'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l dry-run -d 'Show what would be renewed and why, without changing anything'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l no-jitter -d 'Do not wait a random 0-480 s first (done only when stdin is not a terminal and something is due, so that fleets of cron jobs do not hit a CA at the same second)'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand renew" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand status" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand status" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand status" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand status" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -l fix -d 'Repair what is safe to repair: modes, stale temporary files, old generations'
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -l cron -d 'Print a crontab line (twice a day; certctl adds its own random delay)'
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -l systemd -d 'Print a systemd service and timer (twice a day with RandomizedDelaySec)'
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -l system -d 'For a system-wide install (root, /var/lib/keygate) instead of the current user'
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand schedule" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -f -a "show" -d 'Print where the CA certificate is and what it says'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -f -a "export" -d 'Print the CA certificate (PEM) to stdout'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and not __fish_seen_subcommand_from show export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l id -d 'The CA that clients of this managed certificate must trust (mkcert\'s, keygate\'s, or the self-signed certificate itself) [default: cert.id, the certificate keygate serves]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -l id -d 'The CA that clients of this managed certificate must trust (mkcert\'s, keygate\'s, or the self-signed certificate itself) [default: cert.id, the certificate keygate serves]' -r
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print where the CA certificate is and what it says'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "export" -d 'Print the CA certificate (PEM) to stdout'
complete -c certctl -n "__fish_certctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand trust" -l id -d 'The managed certificate whose CA should be trusted [default: cert.id, the certificate keygate serves]' -r
complete -c certctl -n "__fish_certctl_using_subcommand trust" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand trust" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand trust" -l json -d 'Print JSON'
complete -c certctl -n "__fish_certctl_using_subcommand trust" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand trust" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c certctl -n "__fish_certctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l json -d 'Print JSON instead of a table'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l config -d 'Read this config file instead of the default location' -r -F
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l json -d 'Print JSON instead of text'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from paths" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from paths" -s h -l help -d 'Print help'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c certctl -n "__fish_certctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "ensure" -d 'Make sure a valid certificate for the names is published; issue one only if needed'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "issue" -d 'Issue and publish a new certificate, even if the published one is fine'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "inspect" -d 'Show a certificate\'s names, validity, key and problems: a file, a managed id, or what a server presents'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "renew" -d 'Renew every managed certificate that is due; silent when nothing is (for cron)'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "status" -d 'List every managed certificate, its expiry and renewal time; exit 1 if any is due or broken'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "doctor" -d 'Check modes, owners, links, stale files, key/cert match, expiry and the CA; --fix repairs'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "schedule" -d 'Print a crontab line or systemd units that run `certctl renew`'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "ca" -d 'Show or export the CA certificate that clients must trust'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "trust" -d 'Print the commands that make this machine\'s browsers and tools trust the CA'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c certctl -n "__fish_certctl_using_subcommand help; and not __fish_seen_subcommand_from ensure issue inspect renew status doctor schedule ca trust config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certctl -n "__fish_certctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "show" -d 'Print where the CA certificate is and what it says'
complete -c certctl -n "__fish_certctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "export" -d 'Print the CA certificate (PEM) to stdout'
complete -c certctl -n "__fish_certctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c certctl -n "__fish_certctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "paths" -d 'Print the paths keygate uses'

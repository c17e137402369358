# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tokenctl_global_optspecs
    string join \n config= set= q/quiet h/help V/version
end

function __fish_tokenctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tokenctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tokenctl_using_subcommand
    set -l cmd (__fish_tokenctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tokenctl -n "__fish_tokenctl_needs_command" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_needs_command" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_needs_command" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -s V -l version -d 'Print version'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "ensure" -d 'Make sure NAME has a token and a client token file; print the file\'s path'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "create" -d 'Issue a token; its plaintext is shown exactly once (stdout or a 0600 file)'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "list" -d 'List tokens: id, name, scopes, status, created, expires (never secrets)'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "rotate" -d 'Replace NAME\'s token; the old one keeps working for the grace period'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "revoke" -d 'Revoke a token by id, or every token of a name, at once'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "verify" -d 'Check a token (from a file, a descriptor, stdin, KEYGATE_TOKEN, a profile or a prompt)'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "prune" -d 'Remove revoked and expired tokens older than the retention period'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "format" -d 'Describe the token format, or print a regex for secret scanners'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "keygen" -d 'Generate an age X25519 identity (0600; never overwrites)'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "seal" -d 'Encrypt stdin with age, to recipients or with a passphrase'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "unseal" -d 'Decrypt an age file from stdin; output appears only once it fully authenticated'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "client" -d 'Register, list, show, rotate and revoke OAuth clients'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "keys" -d 'List or rotate the keys that sign access tokens'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "login" -d 'Sign a person in to an OAuth issuer (browser with PKCE, or the device grant) and cache the tokens'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "token" -d 'Print a profile\'s OAuth access token, fetching one when the cached one is too old'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "status" -d 'Show who a profile is signed in as, until when, and where the tokens are kept'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "logout" -d 'Revoke a profile\'s OAuth sign-in at its issuer and forget it here'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "credential-helper" -d 'git\'s credential helper: the profile\'s access token as the password'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c tokenctl -n "__fish_tokenctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l name -d 'The token\'s name' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l scope -d 'A scope for the token when it is created (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l wait -d 'If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default: 10; 0 exits 75 at once]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand ensure" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l name -d 'The token\'s name: letters, digits, \'.\', \'_\' and \'-\'' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l scope -d 'A scope for the token (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l expires -d 'Lifetime, e.g. 30d or 12h [default: never expires]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -s o -l output -d 'Write the token to FILE (0600) instead of stdout; `-` is stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l wait -d 'If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default: 10; 0 exits 75 at once]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand create" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand list" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand list" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand list" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand list" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand list" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l name -d 'The name whose active token is replaced' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l grace -d 'How long the old token keeps working, e.g. 24h; 0 revokes it at once [default: token.default_grace, 24h]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -s o -l output -d 'Also write the new token to FILE (0600); `-` is stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l wait -d 'If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default: 10; 0 exits 75 at once]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -l name -d 'Revoke every token of this name instead' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -l wait -d 'If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default: 10; 0 exits 75 at once]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l token-file -d 'Read the token from FILE' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l token-fd -d 'Read the token from file descriptor N' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l profile -d 'Use the token file of profile NAME ([profiles.NAME] in the config file)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand verify" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -l retention -d 'Keep revoked and expired tokens this long after they ended [default: token.retention, 30d]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -l wait -d 'If another run holds the lock, wait up to SECS seconds for it, then exit 75 [default: 10; 0 exits 75 at once]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand prune" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -l regex -d 'Print only a regular expression that matches this store\'s tokens'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand format" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -s o -l output -d 'Write the identity to FILE (0600; refuses to overwrite) instead of stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -l json -d 'Print JSON (the recipient and the file; never the secret key)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s r -l recipient -d 'Encrypt to this age X25519 recipient, age1... (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s R -l recipients-file -d 'Encrypt to the recipients listed in FILE, one per line (repeatable)' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s o -l output -d 'Write to FILE instead of stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s p -l passphrase -d 'Encrypt with a passphrase (AGE_PASSPHRASE, AGE_PASSPHRASE_FD, or a prompt)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s a -l armor -d 'Write ASCII armor instead of binary'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand seal" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -s i -l identity -d 'Decrypt with the identities in FILE (repeatable); without -i, a passphrase is used' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -s o -l output -d 'Write to FILE (0600) instead of stdout, only once the input authenticated' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand unseal" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "create" -d 'Register a client; a confidential client\'s secret is shown exactly once'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "list" -d 'List clients (never secrets)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "show" -d 'Show one client, by id or name'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "rotate" -d 'Give a client a new secret; the old one keeps working for the grace period'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "revoke" -d 'Revoke a client: its secrets and every token it was given stop working'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and not __fish_seen_subcommand_from create list show rotate revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l name -d 'The client\'s name: letters, digits, \'.\', \'_\' and \'-\'' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l grant -d 'A grant type it may use (repeatable) [default: client_credentials]' -r -f -a "client_credentials\t''
authorization_code\t''
device_code\t''"
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l scope -d 'A scope it may be given (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l redirect-uri -d 'A redirect URI for authorization_code (repeatable); http://127.0.0.1/PATH and http://[::1]/PATH match any port' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -s o -l output -d 'Write the secret to FILE (0600) instead of stdout; `-` is stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l public -d 'No secret: a CLI or a single-page app, which proves itself with PKCE instead'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from list" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from list" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from show" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from show" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from show" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -l grace -d 'How long the old secret keeps working, e.g. 24h; 0 ends it at once [default: token.default_grace, 24h]' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -s o -l output -d 'Write the new secret to FILE (0600) instead of stdout; `-` is stdout' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from revoke" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from revoke" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from revoke" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "create" -d 'Register a client; a confidential client\'s secret is shown exactly once'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "list" -d 'List clients (never secrets)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one client, by id or name'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Give a client a new secret; the old one keeps working for the grace period'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a client: its secrets and every token it was given stop working'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -f -a "list" -d 'List the signing keys: next, current and previous (never private parts)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -f -a "rotate" -d 'Rotate now: the published next key starts signing, a new next key is published'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and not __fish_seen_subcommand_from list rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from list" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from list" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l json -d 'Print JSON'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the signing keys: next, current and previous (never private parts)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Rotate now: the published next key starts signing, a new next key is published'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l profile -d 'The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l issuer -d 'The issuer, instead of the profile\'s (later commands take it from the cache)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l client-id -d 'The client id, instead of the profile\'s' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l timeout -d 'How long to wait for the person' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l device -d 'Sign in with the device grant: a code to approve in any browser, on any machine (chosen by itself with no display or over SSH)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -l no-browser -d 'Print the sign-in URL without starting a browser'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand login" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -l profile -d 'The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -l min-validity -d 'Fetch a new token when the cached one has less than this left' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -l format -d 'How to print it' -r -f -a "plain\t'The token alone'
header\t'`Authorization: Bearer TOKEN`, for `curl -H @-`'
kubectl\t'A kubectl ExecCredential (client.authentication.k8s.io/v1)'"
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -l profile -d 'The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -l json -d 'Print a JSON document (docs/json.md)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -l profile -d 'The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -l local -d 'Only forget the token here, without revoking it at the issuer (it then works until it expires)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand logout" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand credential-helper" -l profile -d 'The profile ([profiles.NAME]); else KEYGATE_PROFILE, client.profile, or "default"' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand credential-helper" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand credential-helper" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand credential-helper" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand credential-helper" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and not __fish_seen_subcommand_from explain paths help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from explain" -l json -d 'Print JSON instead of a table'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from explain" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l config -d 'Read this config file instead of the default location' -r -F
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l set -d 'Override one setting for this run, e.g. `--set cert.days=30` (repeatable)' -r
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from paths" -l json -d 'Print JSON instead of text'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from paths" -s q -l quiet -d 'Print nothing on success but what the command produces (a token, a path, JSON, a listing); warnings and errors still print'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from paths" -s h -l help -d 'Print help'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "paths" -d 'Print the paths keygate uses'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "ensure" -d 'Make sure NAME has a token and a client token file; print the file\'s path'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "create" -d 'Issue a token; its plaintext is shown exactly once (stdout or a 0600 file)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "list" -d 'List tokens: id, name, scopes, status, created, expires (never secrets)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "rotate" -d 'Replace NAME\'s token; the old one keeps working for the grace period'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "revoke" -d 'Revoke a token by id, or every token of a name, at once'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "verify" -d 'Check a token (from a file, a descriptor, stdin, KEYGATE_TOKEN, a profile or a prompt)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "prune" -d 'Remove revoked and expired tokens older than the retention period'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "format" -d 'Describe the token format, or print a regex for secret scanners'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "keygen" -d 'Generate an age X25519 identity (0600; never overwrites)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "seal" -d 'Encrypt stdin with age, to recipients or with a passphrase'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "unseal" -d 'Decrypt an age file from stdin; output appears only once it fully authenticated'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "client" -d 'Register, list, show, rotate and revoke OAuth clients'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "keys" -d 'List or rotate the keys that sign access tokens'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "login" -d 'Sign a person in to an OAuth issuer (browser with PKCE, or the device grant) and cache the tokens'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "token" -d 'Print a profile\'s OAuth access token, fetching one when the cached one is too old'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "status" -d 'Show who a profile is signed in as, until when, and where the tokens are kept'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "logout" -d 'Revoke a profile\'s OAuth sign-in at its issuer and forget it here'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "credential-helper" -d 'git\'s credential helper: the profile\'s access token as the password'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "config" -d 'Show where settings come from, and the paths keygate uses'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and not __fish_seen_subcommand_from ensure create list rotate revoke verify prune format keygen seal unseal client keys login token status logout credential-helper config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "create" -d 'Register a client; a confidential client\'s secret is shown exactly once'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "list" -d 'List clients (never secrets)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "show" -d 'Show one client, by id or name'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "rotate" -d 'Give a client a new secret; the old one keeps working for the grace period'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "revoke" -d 'Revoke a client: its secrets and every token it was given stop working'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List the signing keys: next, current and previous (never private parts)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "rotate" -d 'Rotate now: the published next key starts signing, a new next key is published'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "explain" -d 'Print every effective setting and where it came from (flag, env var, file:line, default)'
complete -c tokenctl -n "__fish_tokenctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "paths" -d 'Print the paths keygate uses'

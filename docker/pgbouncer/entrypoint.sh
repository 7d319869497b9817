#!/bin/sh
# Writes PgBouncer's configuration from the environment into /tmp (the root filesystem
# is read-only), then runs it in the foreground.
#   DB_HOST, DB_PORT (5432), DB_NAME, DB_USER, DB_PASSWORD: PostgreSQL and the one
#     account the service connects as, which clients must present too (SCRAM).
#   POOL_SIZE (20): server connections per database and user, the number PostgreSQL sees.
#   MAX_CLIENT_CONN (1000): client connections accepted (every worker's pool).
#   LISTEN_PORT (6432).
set -eu
: "${DB_HOST:?}" "${DB_NAME:?}" "${DB_USER:?}" "${DB_PASSWORD:?}"
config="${TMPDIR:-/tmp}/pgbouncer"
mkdir -p "$config"
umask 077
# The auth file quotes each field; a double quote inside one is written twice.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quoted "$DB_USER")" "$(quoted "$DB_PASSWORD")" > "$config/users.txt"
cat > "$config/pgbouncer.ini" <<INI
[databases]
$DB_NAME = host=$DB_HOST port=${DB_PORT:-5432} dbname=$DB_NAME
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $config/users.txt
pool_mode = transaction
default_pool_size = ${POOL_SIZE:-20}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
INI
exec pgbouncer "$config/pgbouncer.ini"

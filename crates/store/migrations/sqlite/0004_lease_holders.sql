-- Who holds a lease, so a contender can prove it dead and take the lease over at once
-- instead of waiting for expiry (I3). NULL means unknown: an unknown holder is proven
-- nothing, and its lease is taken at expiry as before.
--   holder_host, holder_boot_id, holder_pid_namespace: where it runs; a different boot id on
--     the same host means it died in a reboot.
--   holder_pid, holder_start_time: its pid and that pid's start (clock ticks since boot,
--     field 22 of /proc/PID/stat), so a reused pid is told apart.
--   holder_liveness_key: PostgreSQL only (NULL here); see the PostgreSQL migration.
ALTER TABLE leases ADD COLUMN holder_host TEXT;
ALTER TABLE leases ADD COLUMN holder_boot_id TEXT;
ALTER TABLE leases ADD COLUMN holder_pid_namespace TEXT;
ALTER TABLE leases ADD COLUMN holder_pid INTEGER;
ALTER TABLE leases ADD COLUMN holder_start_time INTEGER;
ALTER TABLE leases ADD COLUMN holder_liveness_key INTEGER;

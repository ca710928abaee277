-- Leases of several daemons sharing one database (SPEC §17). A feed being refreshed is
-- leased to the node refreshing it (`lease_node`) until `lease_until` (Unix seconds),
-- renewed while the refresh runs; an outbox row being sent names its node
-- (`leased_by`) beside the existing `leased_until`. A node that dies leaves its leases
-- to run out, and the others take the work over. On SQLite, with one daemon, only the
-- outbox's node is written.
ALTER TABLE feeds ADD COLUMN lease_node TEXT;
ALTER TABLE feeds ADD COLUMN lease_until INTEGER;
ALTER TABLE outbox ADD COLUMN leased_by TEXT;

-- The throttle audit: one row per transition of a client's throttle workflow, written exactly once
-- (keyed by workflow_id and seq). The current state of a client is its latest row.
CREATE TABLE IF NOT EXISTS actions.throttle_audit (
  "at" TIMESTAMPTZ NOT NULL,      -- when the transition happened (workflow time); quoted: AT is a keyword in DuckDB (time travel)
  workflow_id VARCHAR NOT NULL,   -- throttle-<ip>-<dispositivo>
  run_id VARCHAR,
  seq BIGINT NOT NULL,            -- 1, 2, … within the workflow_id
  client VARCHAR NOT NULL,        -- <ip>/<dispositivo>
  ip VARCHAR NOT NULL,
  dispositivo VARCHAR NOT NULL,
  servidor VARCHAR,
  transition VARCHAR NOT NULL,    -- proposed, approved, rejected, applied, verified, lifted, withdrawn, failed
  state VARCHAR NOT NULL,         -- the state after it: proposed, approved, applied, in force, lifted, withdrawn, rejected, failed
  actor VARCHAR NOT NULL,         -- who: an operator's name, 'policy', or 'netpulse'
  reason VARCHAR,                 -- why, in words
  limit_mbps BIGINT,              -- the limit proposed or in force
  adapter VARCHAR,                -- dryrun, tc, webhook
  adapter_result VARCHAR,         -- what the adapter did or read back
  evidence VARCHAR                -- JSON: plan Mbps, server, server median, times median, server utilisation, heavy since
)

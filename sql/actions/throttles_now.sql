-- Each client's throttle now: the latest row of its latest episode (a client heavy again after a
-- lift starts a new episode, whose seq starts at 1 again).
SELECT * FROM actions.throttle_audit
QUALIFY row_number() OVER (PARTITION BY client ORDER BY happened_at DESC, seq DESC) = 1

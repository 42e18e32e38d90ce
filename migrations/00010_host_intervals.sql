-- +goose Up
-- A host's min_interval_ms is now the largest interval of the targets active on it, recomputed
-- whenever a target changes state (docs/adr/0007-host-interval-follows-active-targets.md).
-- Before, it only rose, and a per_host_rps below one request a day wrapped to days: recompute
-- every host once, clamped like store.MinIntervalMS, and bring forward the next fetch of a host
-- whose interval shrinks, so that a host stalled by an old rate is free again.
UPDATE hosts h SET min_interval_ms = v.ms,
    next_fetch_at = CASE WHEN v.ms < h.min_interval_ms
        THEN least(h.next_fetch_at, now() + greatest(v.ms, h.crawl_delay_ms) * interval '1 millisecond')
        ELSE h.next_fetch_at END
FROM (
    SELECT x.host, coalesce((
        SELECT max(CASE
            WHEN t.per_host_rps = 'NaN' OR t.per_host_rps <= 0 THEN 0
            WHEN t.per_host_rps < 1000.0 / 86400000 THEN 86400000
            ELSE least(ceil(1000 / t.per_host_rps), 86400000)::int END)
        FROM target_hosts th JOIN targets t ON t.id = th.target_id
        WHERE th.host = x.host AND t.state = 'active'), 0) AS ms
    FROM hosts x
) v
WHERE h.host = v.host AND h.min_interval_ms <> v.ms;

-- +goose Down
-- Nothing to undo: the recomputed intervals are valid under the old rule too.
SELECT 1;

-- The change feed's horizon: the highest position whose entry may have been purged. The purge
-- raises it before it deletes anything, and deletes only entries at or below it, so a reader
-- that polled from position P and then finds the horizon still at or below P knows it missed
-- nothing; above P, it has fallen behind the feed's retention and must drop its caches.
CREATE TABLE change_feed_horizon (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    seq      BIGINT NOT NULL
);
-- On a database whose feed was purged before, everything below the oldest published entry
-- left (or, with none left, every position given so far) may be gone.
INSERT INTO change_feed_horizon (seq) VALUES (COALESCE(
    (SELECT MIN(seq) - 1 FROM changes WHERE seq IS NOT NULL),
    (SELECT seq FROM change_feed_head),
    0
));

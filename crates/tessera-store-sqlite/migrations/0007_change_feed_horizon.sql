-- The change feed's horizon: the highest position whose entry may have been purged. The purge
-- raises it before it deletes anything, and deletes only entries at or below it, so a reader
-- that polled from position P and then finds the horizon still at or below P knows it missed
-- nothing; above P, it has fallen behind the feed's retention and must drop its caches.
CREATE TABLE change_feed_horizon (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    seq      INTEGER NOT NULL
);
-- On a database whose feed was purged before, everything below the oldest entry left (or, with
-- none left, every position given so far) may be gone.
INSERT INTO change_feed_horizon (only_row, seq) VALUES (1, COALESCE(
    (SELECT MIN(seq) - 1 FROM changes),
    (SELECT seq FROM sqlite_sequence WHERE name = 'changes'),
    0
));

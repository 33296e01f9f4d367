-- actstore format 3: segments, so that a store's arrays may live in several Zarr groups
-- (a merged store links its parts' arrays in instead of copying them; see FORMAT.md, "Segments").

-- Segment s holds global rows [row_start, next segment's row_start) and records
-- [record_start, next record_start); the last runs to the end. No rows here = one segment,
-- 'arrays', from 0 (every store written by a single writer).
CREATE TABLE segments (
    segment_id   INTEGER PRIMARY KEY,  -- 0, 1, ... in row order
    path         VARCHAR NOT NULL,     -- Zarr group relative to the store root: arrays, segments/0001
    row_start    BIGINT NOT NULL,
    record_start BIGINT NOT NULL,
    source       VARCHAR               -- where the segment came from (the part merged in)
);

-- Chunk numbers are per segment (each segment has its own chunk grid): rebuild the checksum
-- table keyed by (name, segment_id, chunk); existing rows belong to segment 0.
CREATE TABLE chunk_checksums_v3 (
    name       VARCHAR NOT NULL,
    chunk      BIGINT NOT NULL,
    n_rows     INTEGER NOT NULL,
    crc32      BIGINT NOT NULL,
    segment_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, segment_id, chunk)
);
INSERT INTO chunk_checksums_v3 (name, chunk, n_rows, crc32, segment_id)
    SELECT name, chunk, n_rows, crc32, 0 FROM chunk_checksums;
DROP TABLE chunk_checksums;
ALTER TABLE chunk_checksums_v3 RENAME TO chunk_checksums;

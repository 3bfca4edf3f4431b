//! Streaming scans over the whole record store for batch jobs (NCATC lead runs).

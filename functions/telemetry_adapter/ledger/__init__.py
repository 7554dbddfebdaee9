"""The PostgreSQL ledger: one row per submission, so duplicates are suppressed across workers and a
partly published submission resumes where it stopped."""

"""Files that survive a crash: atomic writes, locks, folder syncs and stale temporaries (nothing here is
about runs or datasets; both build on it)."""

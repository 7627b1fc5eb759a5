"""flowtop on OpenWrt's python3-light: the import blocker and its tests."""

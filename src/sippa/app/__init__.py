"""L3: the phone: lines, calls, settings store, provisioning, updates."""

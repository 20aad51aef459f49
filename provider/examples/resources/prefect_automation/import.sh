# An automation is imported by its ID.
terraform import prefect_automation.crash_zombie_flows 0b6f7a1e-3c1d-4b5e-9a8f-2d4c6e8f0a1b

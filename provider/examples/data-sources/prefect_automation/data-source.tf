data "prefect_automation" "zombies" {
  id = "0b6f7a1e-3c1d-4b5e-9a8f-2d4c6e8f0a1b"
}

output "zombie_window_seconds" {
  value = data.prefect_automation.zombies.trigger.event.within
}

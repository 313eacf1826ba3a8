"""Desktop shells: a Tauri 2 project generated with the real Tauri CLI, built by CI runners."""

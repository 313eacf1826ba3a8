"""Mobile shells: a Capacitor project generated with the real Capacitor CLI, built by EAS."""

//go:build race

package migrate_test

// raceEnabled scales the fleets of the end-to-end tests down under the race
// detector, which slows the device plane's single SQLite writer too much
// for 200 devices on a shared machine.
const raceEnabled = true

// Package greet says hello. The agent workflow adds Farewell.
package greet

// Greet says hello to name.
func Greet(name string) string { return "Hello, " + name + "!" }

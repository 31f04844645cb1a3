package greet

import "testing"

func TestGreet(t *testing.T) {
	if got := Greet("Ada"); got != "Hello, Ada!" {
		t.Errorf("Greet = %q", got)
	}
}

func TestFarewell(t *testing.T) {
	if got := Farewell("Ada"); got != "Goodbye, Ada!" {
		t.Errorf("Farewell = %q", got)
	}
}

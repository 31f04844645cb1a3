package abi_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/12fa/12fa/abi"
)

// decodeStrict decodes an envelope refusing any field Envelope lacks.
func decodeStrict(t *testing.T, b []byte) abi.Envelope {
	t.Helper()
	var env abi.Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the envelope", b)
	}
	return env
}

// TestEnvelopeRoundTrip: what AppendEnvelope writes decodes into Envelope
// with no unknown field, with every field as given, for every way of
// selecting outputs and for strings that need escaping.
func TestEnvelopeRoundTrip(t *testing.T) {
	var outs abi.Outputs
	outs.Add("plan", json.RawMessage(`{"steps":["a","b"],"html":"<b>&</b>"}`))
	outs.Add("quote\"d", json.RawMessage(`"text\nwith a line"`))
	outs.Add("n", json.RawMessage(`42`))
	answers := json.RawMessage(`{"env":"prod","why":"<tag> & \"quotes\""}`)
	all := map[string]json.RawMessage{
		"plan":     json.RawMessage(`{"steps":["a","b"],"html":"<b>&</b>"}`),
		"quote\"d": json.RawMessage(`"text\nwith a line"`),
		"n":        json.RawMessage(`42`),
	}
	tests := []struct {
		name    string
		env     abi.Envelope
		only    []string
		inputs  json.RawMessage
		outputs map[string]json.RawMessage
		answers map[string]string
	}{
		{name: "all outputs, answers", env: abi.Envelope{Workflow: "w<1>", RunID: "r-1", Step: "s\u2028x", Attempt: 3, Input: json.RawMessage(`{"goal":"x"}`)},
			inputs: answers, outputs: all, answers: map[string]string{"env": "prod", "why": `<tag> & "quotes"`}},
		{name: "needs two, no input", env: abi.Envelope{Workflow: "w", RunID: "r", Step: "s", Attempt: 1},
			only: []string{"n", "plan", "absent"}, outputs: map[string]json.RawMessage{"n": all["n"], "plan": all["plan"]}},
		{name: "needs none", env: abi.Envelope{Workflow: "w", RunID: "r", Step: "s", Attempt: 1, Input: json.RawMessage(`null`)},
			only: []string{}, outputs: map[string]json.RawMessage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := abi.AppendEnvelope([]byte("prefix"), &tc.env, outs.Members(tc.only), tc.inputs)
			b, ok := bytes.CutPrefix(b, []byte("prefix"))
			if !ok || !json.Valid(b) {
				t.Fatalf("not valid JSON after dst: %s", b)
			}
			got := decodeStrict(t, b)
			want := tc.env
			if len(want.Input) == 0 {
				want.Input = json.RawMessage(`null`)
			}
			want.Outputs, want.Inputs = tc.outputs, tc.answers
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
			}
			// What a step gets re-encodes to what was sent, field for field.
			again, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var a, b2 any
			_ = json.Unmarshal(again, &a)
			_ = json.Unmarshal(b, &b2)
			if !reflect.DeepEqual(a, b2) {
				t.Errorf("re-encoded %s, sent %s", again, b)
			}
		})
	}
	if string(outs.Output("n")) != "42" || outs.Output("absent") != nil {
		t.Errorf("Output: %s, %s", outs.Output("n"), outs.Output("absent"))
	}
}

// TestEnvelopeFields: AppendEnvelope writes every field Envelope declares,
// so a field added to the type and not to the encoder fails here.
func TestEnvelopeFields(t *testing.T) {
	var outs abi.Outputs
	outs.Add("a", json.RawMessage(`1`))
	b := abi.AppendEnvelope(nil, &abi.Envelope{Workflow: "w"}, outs.Members(nil), json.RawMessage(`{"k":"v"}`))
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(abi.Envelope{})
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag.Get("json")
		name, _, _ := bytes.Cut([]byte(tag), []byte(","))
		if _, ok := m[string(name)]; !ok {
			t.Errorf("field %s (%q) is not in %s", typ.Field(i).Name, name, b)
		}
	}
	if len(m) != typ.NumField() {
		t.Errorf("%d members in %s, Envelope has %d fields", len(m), b, typ.NumField())
	}
}

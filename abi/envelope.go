package abi

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/12fa/12fa/internal/jsonenc"
)

// Envelope is the input document a step receives. The host encodes it with
// AppendEnvelope; a step decodes it into this type.
type Envelope struct {
	Workflow string `json:"workflow"`
	RunID    string `json:"run_id"`
	Step     string `json:"step"`
	Attempt  int    `json:"attempt"`
	// Input is the step's input from the manifest (null when none).
	Input json.RawMessage `json:"input"`
	// Outputs holds the output of every completed earlier step, by step id
	// (or of those the step declares it needs).
	Outputs map[string]json.RawMessage `json:"outputs"`
	// Inputs holds the answers to the manifest's [[input]] questions, by key.
	Inputs map[string]string `json:"inputs,omitempty"`
}

// Outputs gathers the outputs of a run's completed steps already encoded as
// the members of an envelope's "outputs" object, so that each envelope
// costs one copy of them, never a re-encoding of every output. The zero
// value is empty and ready to use.
type Outputs struct {
	members bytes.Buffer // `"id":output` pairs, comma-separated
	byID    map[string]json.RawMessage
}

// Add records step id's output, which must be valid JSON.
func (o *Outputs) Add(id string, out json.RawMessage) {
	if o.byID == nil {
		o.byID = make(map[string]json.RawMessage)
	}
	o.byID[id] = out
	if o.members.Len() > 0 {
		o.members.WriteByte(',')
	}
	o.members.Write(jsonenc.String(id))
	o.members.WriteByte(':')
	o.members.Write(out)
}

// Output returns step id's output, nil when it has none.
func (o *Outputs) Output(id string) json.RawMessage { return o.byID[id] }

// Members returns the members of the "outputs" object: all of them when
// only is nil, else those of the steps only names (in that order, and
// skipping those with no output).
func (o *Outputs) Members(only []string) []byte {
	if only == nil {
		return o.members.Bytes()
	}
	var sel []byte
	for _, id := range only {
		out, ok := o.byID[id]
		if !ok {
			continue
		}
		if len(sel) > 0 {
			sel = append(sel, ',')
		}
		sel = append(sel, jsonenc.String(id)...)
		sel = append(sel, ':')
		sel = append(sel, out...)
	}
	return sel
}

// AppendEnvelope appends to dst the encoding of an Envelope: env's fields
// but Outputs and Inputs, then members (from Outputs.Members) as the
// "outputs" object and, unless nil, inputs (the answers, already encoded
// as a JSON object) as "inputs".
func AppendEnvelope(dst []byte, env *Envelope, members []byte, inputs json.RawMessage) []byte {
	input := env.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	dst = append(dst, `{"workflow":`...)
	dst = append(dst, jsonenc.String(env.Workflow)...)
	dst = append(dst, `,"run_id":`...)
	dst = append(dst, jsonenc.String(env.RunID)...)
	dst = append(dst, `,"step":`...)
	dst = append(dst, jsonenc.String(env.Step)...)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(env.Attempt), 10)
	dst = append(dst, `,"input":`...)
	dst = append(dst, input...)
	dst = append(dst, `,"outputs":{`...)
	dst = append(dst, members...)
	dst = append(dst, '}')
	if inputs != nil {
		dst = append(dst, `,"inputs":`...)
		dst = append(dst, inputs...)
	}
	return append(dst, '}')
}

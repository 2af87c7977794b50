package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/sozu-go/sozu/proto/command"
)

// Custom answers: `cluster add` and `listener http|https update` take
// answer templates from files the CLI reads (as the operator running it),
// sending their content. The supervisor compiles them with the workers'
// code (worker/answers) and refuses a template they would not use.
var (
	fAnswer = &flagSpec{long: "answer", kind: kindString, repeatable: true, metavar: "CODE=FILE",
		help: "answer template for status CODE, read from FILE (an HTTP response head and body)"}
	fAnswer503 = &flagSpec{long: "answer-503", kind: kindString, metavar: "FILE",
		help: "template of the 503 answer when no backend is available, read from FILE"}
)

// answerFlags checks the CODE=FILE values of --answer (build stays pure:
// the files are read by loadAnswerFiles) and returns them by code.
func answerFlags(v *values) (map[string]string, error) {
	m := map[string]string{}
	for _, raw := range v.list("answer") {
		code, path, ok := strings.Cut(raw, "=")
		if !ok || len(code) != 3 || strings.Trim(code, "0123456789") != "" || code[0] < '1' || code[0] > '5' || path == "" {
			return nil, fmt.Errorf("invalid value %q for --answer: want CODE=FILE with a status code from 100 to 599", raw)
		}
		if _, dup := m[code]; dup {
			return nil, fmt.Errorf("--answer %s given more than once", code)
		}
		m[code] = path
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// loadAnswerFiles replaces the file names of a built request's answers by
// the files' content; its errors name the flag and the file.
func loadAnswerFiles(req *command.Request, v *values, read readFileFunc) (*command.Request, error) {
	req = proto.Clone(req).(*command.Request)
	var m map[string]string
	switch r := req.GetRequestType().(type) {
	case *command.Request_AddCluster:
		m = r.AddCluster.GetAnswers()
		if v.has("answer-503") {
			b, err := readFlagFile(v, read, "answer-503")
			if err != nil {
				return nil, err
			}
			r.AddCluster.Answer_503 = ptr(string(b))
		}
	case *command.Request_UpdateHttpListener:
		m = r.UpdateHttpListener.GetAnswers()
	case *command.Request_UpdateHttpsListener:
		m = r.UpdateHttpsListener.GetAnswers()
	}
	for code, path := range m {
		b, err := read(path)
		if err != nil {
			return nil, &fileError{flag: "answer", path: path, err: err}
		}
		m[code] = string(b)
	}
	return req, nil
}

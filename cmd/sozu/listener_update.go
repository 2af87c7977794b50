package main

import (
	"errors"
	"strings"

	"github.com/sozu-go/sozu/proto/command"
)

// `listener http|https|tcp update` patches a listener in place
// (update_*_listener): only the flags given change; the others keep their
// value.
var (
	fStrictSNI    = &flagSpec{long: "strict-sni-binding", kind: kindBool, help: "refuse a request whose Host has no certificate matching the TLS SNI"}
	fDisableHTTP1 = &flagSpec{long: "disable-http11", kind: kindBool, help: "offer only h2 by ALPN"}
	fALPN         = &flagSpec{long: "alpn-protocols", kind: kindString, metavar: "P,…", help: "ALPN protocols in order of preference: h2, http/1.1"}
)

// listenerUpdateFlags are the flags of `listener PROTO update`.
func listenerUpdateFlags(proto string) []*flagSpec {
	fs := []*flagSpec{fAddress, fPublicAddress, fExpectProxy, fFrontTimeout, fBackTimeout, fConnectTimeout}
	if proto != "tcp" {
		fs = append(fs, fRequestTimeout, fStickyName.withHelp("sticky-session cookie name"), fAnswer)
	}
	if proto == "https" {
		fs = append(fs, fStrictSNI, fDisableHTTP1, fALPN,
			fHSTS.withHelp("the listener's default for its frontends: send Strict-Transport-Security (--hsts=false: do not)"))
		fs = append(fs, hstsFlags[1:]...)
	}
	return fs
}

var errNothingToUpdate = errors.New("nothing to update: give at least one flag besides --address")

func listenerUpdateBuilder(proto string) func(*values) (*command.Request, error) {
	return func(v *values) (*command.Request, error) {
		if len(v.set) <= 1 {
			return nil, errNothingToUpdate
		}
		u32 := func(name string) *uint32 {
			if !v.has(name) {
				return nil
			}
			return ptr(v.u32(name, 0))
		}
		boolean := func(name string) *bool {
			if !v.has(name) {
				return nil
			}
			return ptr(v.flag(name))
		}
		answers, err := answerFlags(v)
		if err != nil {
			return nil, err
		}
		switch proto {
		case "http":
			return &command.Request{RequestType: &command.Request_UpdateHttpListener{UpdateHttpListener: &command.UpdateHttpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				StickyName: v.optStr("sticky-name"), FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"),
				ConnectTimeout: u32("connect-timeout"), RequestTimeout: u32("request-timeout"), Answers: answers,
			}}}, nil
		case "https":
			u := &command.UpdateHttpsListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				StickyName: v.optStr("sticky-name"), FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"),
				ConnectTimeout: u32("connect-timeout"), RequestTimeout: u32("request-timeout"), Answers: answers,
				StrictSniBinding: boolean("strict-sni-binding"), DisableHttp11: boolean("disable-http11"), Hsts: hstsFromFlags(v),
			}
			if v.has("alpn-protocols") {
				var alpn []string
				for p := range strings.SplitSeq(v.str("alpn-protocols"), ",") {
					alpn = append(alpn, strings.TrimSpace(p))
				}
				u.AlpnProtocols = &command.AlpnProtocols{Values: alpn}
			}
			return &command.Request{RequestType: &command.Request_UpdateHttpsListener{UpdateHttpsListener: u}}, nil
		default:
			return &command.Request{RequestType: &command.Request_UpdateTcpListener{UpdateTcpListener: &command.UpdateTcpListenerConfig{
				Address: v.addr("address"), PublicAddress: v.addr("public-address"), ExpectProxy: boolean("expect-proxy"),
				FrontTimeout: u32("front-timeout"), BackTimeout: u32("back-timeout"), ConnectTimeout: u32("connect-timeout"),
			}}}, nil
		}
	}
}

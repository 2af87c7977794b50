package main

import (
	"bytes"
	"net"
)

// serveGo is the same proxy with a goroutine per client connection and
// Go's netpoller (blocking reads and writes on net.Conn).
func serveGo(listen, backend string) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			in := make([]byte, 16384)
			bin := make([]byte, 16384)
			req := make([]byte, 0, 16384)
			n := 0
			var b net.Conn
			defer func() {
				if b != nil {
					b.Close()
				}
			}()
			for {
				end, cl := head(in[:n])
				for end < 0 || n < end+cl {
					m, err := c.Read(in[n:])
					if err != nil {
						return
					}
					n += m
					end, cl = head(in[:n])
				}
				if b == nil {
					if b, err = net.Dial("tcp", backend); err != nil {
						return
					}
				}
				rl := bytes.IndexByte(in[:end], '\n') + 1
				req = append(req[:0], in[:rl]...)
				req = append(req, "X-Forwarded-For: 127.0.0.1\r\n"...)
				req = append(req, in[rl:end+cl]...)
				if _, err := b.Write(req); err != nil {
					return
				}
				copy(in, in[end+cl:n])
				n -= end + cl
				bn := 0
				for {
					m, err := b.Read(bin[bn:])
					if err != nil {
						return
					}
					bn += m
					e, l := head(bin[:bn])
					if e >= 0 && bn >= e+l {
						if _, err := c.Write(bin[:e+l]); err != nil {
							return
						}
						break
					}
				}
			}
		}(c)
	}
}

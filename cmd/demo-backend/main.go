// Command demo-backend is the small HTTP origin that `make run` puts behind
// the proxy: it answers every request with a short text naming itself.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	name := flag.String("name", "demo-backend", "name given in every answer")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from %s: %s %s\n", *name, r.Method, r.URL.RequestURI())
	})
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.SetOutput(os.Stderr)
	log.Printf("%s listening on http://%s/", *name, *addr)
	log.Fatal(srv.ListenAndServe())
}

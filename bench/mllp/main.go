// Command mllp measures how many HL7 v2 ORU^R01 messages per second an
// MLLP listener acknowledges, one message at a time over one connection
// (send, wait for the ACK, send the next), the way an interface engine
// sends. It measures tmcad's listener (-target) against two peers it runs
// itself on loopback in the same process, rounds alternating:
//
//   - "sink": reads each frame, parses the MSH and answers AA (the same
//     reports/mllp framing and ACK code as tmcad), storing nothing;
//   - "sink+fsync": the same, and before the ACK writes the message to a
//     new file, fsyncs it, renames it into place and fsyncs the folder
//     (tmcad's durable-store steps, without parsing the message).
//
// Every message is distinct (its MSH-10 control ID is numbered), so tmcad
// stores each one. It prints one JSON object with the messages per second
// of every round.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tmcad/reports/mllp"
)

func main() {
	target := flag.String("target", "", "tmcad's MLLP listener, host:port")
	msgPath := flag.String("message", "reports/testdata/oru_final.hl7", "ORU^R01 to send; its MSH-10 is replaced by a numbered one")
	n := flag.Int("n", 500, "messages per round and listener")
	rounds := flag.Int("rounds", 3, "rounds (each measures every listener once)")
	dir := flag.String("dir", "", "folder for the sink+fsync peer's files (on the disk tmcad stores to)")
	flag.Parse()
	if *target == "" || *dir == "" {
		log.Fatal("mllp bench: -target and -dir are required")
	}
	tmpl, err := os.ReadFile(*msgPath)
	if err != nil {
		log.Fatalf("mllp bench: %v", err)
	}
	if !bytes.Contains(tmpl, []byte("|MSG00001|")) {
		log.Fatalf("mllp bench: %s has no MSH-10 MSG00001 to number", *msgPath)
	}
	sink, err := startSink("")
	if err != nil {
		log.Fatal(err)
	}
	durable, err := startSink(*dir)
	if err != nil {
		log.Fatal(err)
	}
	res := map[string][]float64{}
	seq := 0
	for r := 0; r < *rounds; r++ {
		for _, l := range []struct{ name, addr string }{{"sink", sink}, {"sink+fsync", durable}, {"tmcad", *target}} {
			rate, err := measure(l.addr, tmpl, *n, &seq)
			if err != nil {
				log.Fatalf("mllp bench: %s round %d: %v", l.name, r+1, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %-10s %8.1f msg/s\n", r+1, l.name, rate)
			res[l.name] = append(res[l.name], rate)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Fatal(err)
	}
}

// measure sends n numbered messages to addr over one connection, each
// after the previous one's ACK, and returns the messages per second. Any
// answer other than AA is an error.
func measure(addr string, tmpl []byte, n int, seq *int) (float64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer c.Close()
	rd := mllp.NewReader(c, 0)
	start := time.Now()
	for i := 0; i < n; i++ {
		*seq++
		msg := bytes.Replace(tmpl, []byte("|MSG00001|"), fmt.Appendf(nil, "|BENCH%08d|", *seq), 1)
		if err := mllp.WriteMessage(c, msg); err != nil {
			return 0, fmt.Errorf("sending message %d: %w", i+1, err)
		}
		ack, err := rd.ReadMessage()
		if err != nil {
			return 0, fmt.Errorf("reading ACK %d: %w", i+1, err)
		}
		if !strings.Contains(string(ack), "MSA|AA|") {
			return 0, fmt.Errorf("message %d answered %q, want MSA|AA", i+1, ack)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// startSink runs a peer listener on a loopback port and returns its
// address; with dir set, each message is stored durably there before the
// ACK.
func startSink(dir string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("mllp bench: sink: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSink(c, dir)
		}
	}()
	return ln.Addr().String(), nil
}

func serveSink(c net.Conn, dir string) {
	defer c.Close()
	rd := mllp.NewReader(c, 0)
	for i := 0; ; i++ {
		msg, err := rd.ReadMessage()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Printf("mllp bench: sink: %v", err)
			}
			return
		}
		h, err := mllp.ParseHeader(msg)
		if err != nil {
			log.Printf("mllp bench: sink: %v", err)
			return
		}
		if dir != "" {
			if err := storeDurably(dir, fmt.Sprintf("%p-%d.hl7", c, i), msg); err != nil {
				log.Printf("mllp bench: sink: %v", err)
				return
			}
		}
		if err := mllp.WriteMessage(c, mllp.BuildACK(h, mllp.Ack{Code: mllp.AA, ControlID: "SINK"})); err != nil {
			return
		}
	}
}

// storeDurably writes data as dir/name the way tmcad's listener does: a
// temporary file, fsynced, renamed into place, the folder fsynced.
func storeDurably(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return fmt.Errorf("temporary file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("renaming into place: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

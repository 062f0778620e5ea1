// Command ctrload prepares a private containerd (Debian's, a real Go daemon) and loads
// it so that its goroutines block on its locks, with concurrent `ctr` commands: either
// imports of one image, built here from files (an OCI image layout tar, no registry,
// no network), with `ctr images rm` of it in between so imports keep writing content,
// unpacking and updating the metadata database — concurrent writers of the same blob
// hit containerd's duplicate-pull bug (containerd#4937, the Go demo's): the content
// store's try-lock sleeps run inside a bbolt write transaction, so the other writers
// queue on bbolt's single writer lock — or snapshot churn (prepare, remove), which
// meets on the metadata database's locks and its garbage collector.
//
// It is the one home of this setup for lockprof's root test (profiler/tests/go_daemon.rs)
// and the overhead benchmark (cargo xtask bench overhead). It never starts or stops the
// daemon: the caller starts `containerd --config DIR/config.toml` itself and stops it by
// its PID.
//
// Usage:
//
//	ctrload -dir DIR [-metrics 127.0.0.1:PORT] setup
//	    writes DIR/config.toml (root, state, socket and the opt plugin's directory all
//	    under DIR; the CRI plugin off) and DIR/image.tar.
//	ctrload -dir DIR [-workers 8] [-mix import|snapshots] [-rm-every 4] [-seconds N] load
//	    imports the image once (an error exits 1 with containerd's message), prints
//	    "ready", then runs the workers until N seconds passed (0: until stdin is
//	    closed) and prints one JSON line: {"ctrload":"containerd","ok":…,"failed":…}.
//	    -mix import (the root test): every loop imports the same image, every 4th
//	    removes it — the duplicate-pull bug, a bursty rate. -mix snapshots (the
//	    benchmark): each loop prepares and removes snapshots of its own — the
//	    metadata database's locks and garbage collector, a steady rate.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// imageName is the name the index gives the image (`ctr images rm` needs it).
const imageName = "lockprof.test/tiny:latest"

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "ctrload: "+format+"\n", args...)
	os.Exit(1)
}

// tarOf is a tar of files (name → contents), in the order of names.
func tarOf(names []string, files map[string][]byte) []byte {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, name := range names {
		body := files[name]
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			hdr = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := w.WriteHeader(hdr); err != nil {
			fail("tar: %v", err)
		}
		if _, err := w.Write(body); err != nil {
			fail("tar: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		fail("tar: %v", err)
	}
	return buf.Bytes()
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// imageTar is an OCI image layout of one layer of 200 small files.
func imageTar() []byte {
	blobs := map[string][]byte{}
	var blobNames []string
	add := func(mediaType string, body []byte) descriptor {
		sum := sha256.Sum256(body)
		hexSum := hex.EncodeToString(sum[:])
		name := "blobs/sha256/" + hexSum
		if _, seen := blobs[name]; !seen {
			blobNames = append(blobNames, name)
		}
		blobs[name] = body
		return descriptor{MediaType: mediaType, Digest: "sha256:" + hexSum, Size: len(body)}
	}
	mustJSON := func(v interface{}) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			fail("json: %v", err)
		}
		return b
	}

	files := map[string][]byte{"data/": nil}
	names := []string{"data/"}
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("data/f%d", i)
		names = append(names, name)
		files[name] = bytes.Repeat([]byte(fmt.Sprintf("file %d\n", i)), 100+i)
	}
	layer := add("application/vnd.oci.image.layer.v1.tar", tarOf(names, files))
	config := add("application/vnd.oci.image.config.v1+json", mustJSON(map[string]interface{}{
		"architecture": "amd64", "os": "linux",
		"config": map[string]interface{}{"Cmd": []string{"/bin/true"}},
		"rootfs": map[string]interface{}{"type": "layers", "diff_ids": []string{layer.Digest}},
	}))
	manifest := add("application/vnd.oci.image.manifest.v1+json", mustJSON(map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        config,
		"layers":        []descriptor{layer},
	}))
	manifest.Annotations = map[string]string{
		"io.containerd.image.name":          imageName,
		"org.opencontainers.image.ref.name": "latest",
	}
	blobs["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	blobs["index.json"] = mustJSON(map[string]interface{}{
		"schemaVersion": 2, "manifests": []descriptor{manifest},
	})
	entries := append([]string{"oci-layout", "index.json", "blobs/", "blobs/sha256/"}, blobNames...)
	return tarOf(entries, blobs)
}

// config is containerd's configuration with everything under dir.
func config(dir, metrics string) string {
	q := func(name string) string { return fmt.Sprintf("%q", filepath.Join(dir, name)) }
	var b strings.Builder
	fmt.Fprintf(&b, "version = 2\nroot = %s\nstate = %s\n", q("root"), q("state"))
	// CRI would start a streaming server and look for CNI; image work does not need it.
	b.WriteString("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n")
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n[ttrpc]\n  address = %s\n", q("containerd.sock"), q("containerd.sock.ttrpc"))
	if metrics != "" {
		fmt.Fprintf(&b, "[metrics]\n  address = %q\n", metrics)
	}
	// The opt plugin would otherwise create /opt/containerd.
	fmt.Fprintf(&b, "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %s\n", q("opt"))
	return b.String()
}

func setup(dir, metrics string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config(dir, metrics)), 0o644); err != nil {
		fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "image.tar"), imageTar(), 0o644); err != nil {
		fail("%v", err)
	}
}

// ctrTimeout bounds one `ctr` command: a `ctr` whose daemon went away mid-call can
// wait forever, and the load must still end when told.
const ctrTimeout = time.Minute

// ctr runs `ctr -a DIR/containerd.sock args…` and returns its combined output.
func ctr(dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"-a", filepath.Join(dir, "containerd.sock")}, args...)...)
	return cmd.CombinedOutput()
}

// load runs the workers, each running `ctr` commands back to back:
//   - mix "import": all import the one image and every rmEvery-th removes it, so
//     writers of the same blobs meet in the content store's try-locks (inside a
//     bbolt write transaction) — the duplicate-pull bug, with a bursty rate;
//   - mix "snapshots": each prepares and removes snapshots of its own, so they meet
//     on the metadata database's locks and its garbage collector, at a steady rate.
func load(dir string, workers, rmEvery, seconds int, mix string) {
	tarPath := filepath.Join(dir, "image.tar")
	if out, err := ctr(dir, "images", "import", tarPath); err != nil {
		fail("the first import failed (%v): %s", err, bytes.TrimSpace(out))
	}
	// step[w](i) is worker w's i-th command.
	step := make([]func(i int) []string, workers)
	for w := range step {
		w := w
		switch {
		case mix == "snapshots":
			step[w] = func(i int) []string {
				key := fmt.Sprintf("lockprof-%d-%d", w, i/2)
				if i%2 == 0 {
					return []string{"snapshots", "prepare", key}
				}
				return []string{"snapshots", "rm", key}
			}
		case rmEvery > 0 && w%rmEvery == rmEvery-1:
			step[w] = func(int) []string { return []string{"images", "rm", imageName} }
		default:
			step[w] = func(int) []string { return []string{"images", "import", tarPath} }
		}
	}
	fmt.Println("ready")
	var stop atomic.Bool
	if seconds > 0 {
		time.AfterFunc(time.Duration(seconds)*time.Second, func() { stop.Store(true) })
	} else {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			stop.Store(true)
		}()
	}
	start := time.Now()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for _, next := range step {
		next := next
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				// `rm` of an image another worker already removed fails: load all
				// the same, counted apart.
				if _, err := ctr(dir, next(i)...); err == nil {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	out, _ := json.Marshal(map[string]interface{}{
		"ctrload": "containerd", "workers": workers, "ok": ok.Load(), "failed": failed.Load(),
		"seconds": time.Since(start).Seconds(),
	})
	fmt.Println(string(out))
}

func main() {
	dir := flag.String("dir", "", "directory of the daemon's config, state and socket (required)")
	metrics := flag.String("metrics", "", "setup: serve Prometheus metrics on this 127.0.0.1:PORT")
	workers := flag.Int("workers", 8, "load: concurrent ctr loops")
	mix := flag.String("mix", "import", "load: import (imports and removals of one image) or snapshots")
	rmEvery := flag.Int("rm-every", 4, "load, -mix import: every Nth loop removes the image (0: none)")
	seconds := flag.Int("seconds", 0, "load: stop after this long (0: when stdin is closed)")
	flag.Parse()
	if *dir == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ctrload -dir DIR [flags] setup|load")
		os.Exit(2)
	}
	if *workers < 1 || *rmEvery < 0 || *seconds < 0 {
		fmt.Fprintln(os.Stderr, "ctrload: -workers must be positive, -rm-every and -seconds not negative")
		os.Exit(2)
	}
	if *mix != "import" && *mix != "snapshots" {
		fmt.Fprintln(os.Stderr, "ctrload: -mix must be import or snapshots")
		os.Exit(2)
	}
	if *metrics != "" && !strings.HasPrefix(*metrics, "127.0.0.1:") {
		fmt.Fprintln(os.Stderr, "ctrload: -metrics must be 127.0.0.1:PORT (no network)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail("%v", err)
	}
	switch flag.Arg(0) {
	case "setup":
		setup(abs, *metrics)
	case "load":
		load(abs, *workers, *rmEvery, *seconds, *mix)
	default:
		fmt.Fprintf(os.Stderr, "ctrload: unknown command %q (setup or load)\n", flag.Arg(0))
		os.Exit(2)
	}
}

// cnetd-bench-cni: a libcni client for tools/bench.sh, driving the CNI plugins the way container
// runtimes (containerd, CRI-O) do: one long-lived process that loads a conflist once and calls
// libcni's AddNetworkList / DelNetworkList, which exec the plugin binaries with the config on stdin.
//
// Built by bench.sh in GOPATH mode against Debian's golang-github-appc-cni-dev (no network).
//
// Usage: cnetd-bench-cni <conflist> <plugin-dir> <cache-dir>
// Protocol: one command per line on stdin, one reply per line on stdout ("ok <microseconds>" or
// "err <message>"):
//
//	add <container-id> <netns-path> [<hostport>:<containerport>,...]
//	del <container-id> <netns-path> [<hostport>:<containerport>,...]
//	par <goroutines> add|del <id> <netns> [add|del <id> <netns> ...]   (total time)
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
)

type portMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

func runtimeConf(id, netns, ports string) (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0"}
	if ports != "" {
		var pm []portMapping
		for _, p := range strings.Split(ports, ",") {
			hc := strings.SplitN(p, ":", 2)
			if len(hc) != 2 {
				return nil, fmt.Errorf("port %q: expected host:container", p)
			}
			h, err1 := strconv.Atoi(hc[0])
			c, err2 := strconv.Atoi(hc[1])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("port %q: not numbers", p)
			}
			pm = append(pm, portMapping{h, c, "tcp"})
		}
		rt.CapabilityArgs = map[string]interface{}{"portMappings": pm}
	}
	return rt, nil
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: cnetd-bench-cni <conflist> <plugin-dir> <cache-dir>")
		os.Exit(2)
	}
	list, err := libcni.ConfListFromFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cnetd-bench-cni:", err)
		os.Exit(1)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{os.Args[2]}, os.Args[3], nil)
	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		t0 := time.Now()
		err := run(ctx, cni, list, f)
		if err != nil {
			fmt.Fprintf(out, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(out, "ok %d\n", time.Since(t0).Microseconds())
		}
		out.Flush()
	}
}

func run(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList, f []string) error {
	switch f[0] {
	case "add", "del":
		if len(f) < 3 {
			return fmt.Errorf("%s: <id> <netns> [ports]", f[0])
		}
		ports := ""
		if len(f) > 3 {
			ports = f[3]
		}
		rt, err := runtimeConf(f[1], f[2], ports)
		if err != nil {
			return err
		}
		if f[0] == "add" {
			_, err = cni.AddNetworkList(ctx, list, rt)
		} else {
			err = cni.DelNetworkList(ctx, list, rt)
		}
		return err
	case "par":
		if len(f) < 2 {
			return fmt.Errorf("par: <goroutines> add|del <id> <netns> ...")
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 {
			return fmt.Errorf("par: bad goroutine count %q", f[1])
		}
		type job struct {
			add bool
			rt  *libcni.RuntimeConf
		}
		var jobs []job
		for i := 2; i+2 < len(f); i += 3 {
			if f[i] != "add" && f[i] != "del" {
				return fmt.Errorf("par: expected add or del, got %q", f[i])
			}
			rt, _ := runtimeConf(f[i+1], f[i+2], "")
			jobs = append(jobs, job{f[i] == "add", rt})
		}
		ch := make(chan job)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for g := 0; g < n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range ch {
					var err error
					if j.add {
						_, err = cni.AddNetworkList(ctx, list, j.rt)
					} else {
						err = cni.DelNetworkList(ctx, list, j.rt)
					}
					if err != nil {
						mu.Lock()
						if first == nil {
							first = fmt.Errorf("%s: %w", j.rt.ContainerID, err)
						}
						mu.Unlock()
					}
				}
			}()
		}
		for _, j := range jobs {
			ch <- j
		}
		close(ch)
		wg.Wait()
		return first
	}
	return fmt.Errorf("unknown command %q", f[0])
}

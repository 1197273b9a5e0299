// libcni-client drives cnetd-cni the way CRI-O, Podman and Nomad do: through libcni (Debian's
// golang-github-appc-cni-dev), with a conflist, a plugin path and a result cache dir.
//
//	libcni-client add|check|del CONFLIST CONTAINERID NETNS IFNAME [K=V ...]
//	libcni-client gc CONFLIST CONTAINERID/IFNAME ...   (the attachments to keep)
//	libcni-client status CONFLIST
//	libcni-client version CONFLIST
//
// K=V: CNI_ARGS (IP=, MAC=, K8S_POD_*, IgnoreUnknown) or capabilities: port=HOST:CONTAINER[/PROTO],
// ips=CIDR, mac=MAC. Env CNI_PATH: plugin dirs, CNI_CACHE_DIR: libcni's cache.
// add prints libcni's result (converted to 1.0.0) as JSON. Errors: the plugin's error on stderr,
// exit 1; for STATUS the exit code is the CNI error code (50, 51).
//
// Debian's libcni is v1.1.1 (spec 1.0.0): it has no GC or STATUS yet, so those two are sent the way
// libcni 1.2 sends them (invoke package, the plugin's conf at cniVersion 1.1.0 with
// cni.dev/valid-attachments), and the cache-based DELs libcni 1.2 synthesises are done here too.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, err)
	if e, ok := err.(*types.Error); ok && (e.Code == 50 || e.Code == 51) {
		os.Exit(int(e.Code))
	}
	os.Exit(1)
}

// The plugin's conf as libcni 1.2 builds it for GC/STATUS: name and cniVersion injected.
func pluginConf(list *libcni.NetworkConfigList, extra map[string]interface{}) []byte {
	var m map[string]interface{}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &m); err != nil {
		die(err)
	}
	m["name"] = list.Name
	m["cniVersion"] = "1.1.0"
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func main() {
	if len(os.Args) < 3 {
		die(fmt.Errorf("usage: libcni-client add|check|del|gc|status|version CONFLIST ..."))
	}
	cmd, confPath := os.Args[1], os.Args[2]
	list, err := libcni.ConfListFromFile(confPath)
	if err != nil {
		die(err)
	}
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cacheDir := os.Getenv("CNI_CACHE_DIR")
	cninet := libcni.NewCNIConfigWithCacheDir(paths, cacheDir, nil)
	ctx := context.Background()
	pluginPath, err := invoke.FindInPath(list.Plugins[0].Network.Type, paths)
	if err != nil && cmd != "add" {
		die(err)
	}

	switch cmd {
	case "version":
		info, err := cninet.GetVersionInfo(ctx, list.Plugins[0].Network.Type)
		if err != nil {
			die(err)
		}
		fmt.Println(strings.Join(info.SupportedVersions(), " "))
		return
	case "status":
		args := &invoke.Args{Command: "STATUS", Path: strings.Join(paths, ":")}
		if err := invoke.ExecPluginWithoutResult(ctx, pluginPath, pluginConf(list, nil), args, nil); err != nil {
			die(err)
		}
		return
	case "gc":
		valid := []map[string]string{}
		keep := map[string]bool{}
		for _, a := range os.Args[3:] {
			p := strings.SplitN(a, "/", 2)
			valid = append(valid, map[string]string{"containerID": p[0], "ifname": p[1]})
			keep[a] = true
		}
		// libcni 1.2: DEL every cached attachment of this network that is not valid, then GC.
		cached, _ := filepath.Glob(filepath.Join(cacheDir, "results", list.Name+"-*"))
		for _, f := range cached {
			var c struct {
				ContainerID string `json:"containerId"`
				IfName      string `json:"ifName"`
				NetNS       string `json:"netns"`
			}
			b, err := os.ReadFile(f)
			if err != nil || json.Unmarshal(b, &c) != nil || keep[c.ContainerID+"/"+c.IfName] {
				continue
			}
			rt := &libcni.RuntimeConf{ContainerID: c.ContainerID, NetNS: c.NetNS, IfName: c.IfName}
			if err := cninet.DelNetworkList(ctx, list, rt); err != nil {
				die(err)
			}
		}
		conf := pluginConf(list, map[string]interface{}{"cni.dev/valid-attachments": valid})
		args := &invoke.Args{Command: "GC", Path: strings.Join(paths, ":")}
		if err := invoke.ExecPluginWithoutResult(ctx, pluginPath, conf, args, nil); err != nil {
			die(err)
		}
		return
	}

	if len(os.Args) < 6 {
		die(fmt.Errorf("usage: libcni-client %s CONFLIST CONTAINERID NETNS IFNAME [K=V ...]", cmd))
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    os.Args[3],
		NetNS:          os.Args[4],
		IfName:         os.Args[5],
		CapabilityArgs: map[string]interface{}{},
	}
	var ports []map[string]interface{}
	for _, kv := range os.Args[6:] {
		p := strings.SplitN(kv, "=", 2)
		switch p[0] {
		case "port":
			proto := "tcp"
			spec := p[1]
			if i := strings.Index(spec, "/"); i >= 0 {
				spec, proto = spec[:i], spec[i+1:]
			}
			hc := strings.SplitN(spec, ":", 2)
			h, _ := strconv.Atoi(hc[0])
			c, _ := strconv.Atoi(hc[1])
			ports = append(ports, map[string]interface{}{"hostPort": h, "containerPort": c, "protocol": proto})
		case "ips":
			rt.CapabilityArgs["ips"] = []string{p[1]}
		case "mac":
			rt.CapabilityArgs["mac"] = p[1]
		default:
			rt.Args = append(rt.Args, [2]string{p[0], p[1]})
		}
	}
	if ports != nil {
		rt.CapabilityArgs["portMappings"] = ports
	}
	switch cmd {
	case "add":
		res, err := cninet.AddNetworkList(ctx, list, rt)
		if err != nil {
			die(err)
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			die(err)
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	case "check":
		if err := cninet.CheckNetworkList(ctx, list, rt); err != nil {
			die(err)
		}
	case "del":
		if err := cninet.DelNetworkList(ctx, list, rt); err != nil {
			die(err)
		}
	default:
		die(fmt.Errorf("unknown command %q", cmd))
	}
}

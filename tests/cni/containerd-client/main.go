// containerd-client reproduces containerd's CRI pod sandbox calls through go-cni (Debian's
// golang-github-containerd-go-cni-dev), as containerd 1.7 makes them: loopback first, then the
// first conflist of the conf dir, one after the other (SetupSerially); CNI_ARGS with
// K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID and IgnoreUnknown=1;
// port mappings through the portMappings capability; teardown with Remove.
//
//	containerd-client setup CONFDIR SANDBOXID NETNS POD [HOST:CONTAINER[/PROTO] ...]
//	containerd-client remove CONFDIR SANDBOXID NETNS POD
//
// setup prints {"eth0": "<pod IP>", "interfaces": [...]} — the pod IP the way containerd reads it
// (the IPConfigs of the interface named eth0). Env CNI_PATH: the plugin dir.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	gocni "github.com/containerd/go-cni"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 6 {
		die(fmt.Errorf("usage: containerd-client setup|remove CONFDIR SANDBOXID NETNS POD [ports]"))
	}
	cmd, confDir, id, netns, pod := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	// containerd's CRI defaults: conf dir, plugin dir, max 1 conf, 2 networks (lo + the conflist).
	l, err := gocni.New(gocni.WithMinNetworkCount(2),
		gocni.WithPluginConfDir(confDir),
		gocni.WithPluginDir(strings.Split(os.Getenv("CNI_PATH"), ":")),
		gocni.WithPluginMaxConfNum(1),
		gocni.WithInterfacePrefix("eth"))
	if err != nil {
		die(err)
	}
	if err := l.Load(gocni.WithLoNetwork, gocni.WithDefaultConf); err != nil {
		die(err)
	}
	labels := map[string]string{
		"K8S_POD_NAMESPACE":          "default",
		"K8S_POD_NAME":               pod,
		"K8S_POD_INFRA_CONTAINER_ID": id,
		"K8S_POD_UID":                "uid-" + pod,
		"IgnoreUnknown":              "1",
	}
	var ports []gocni.PortMapping
	for _, p := range os.Args[6:] {
		proto := "tcp"
		if i := strings.Index(p, "/"); i >= 0 {
			p, proto = p[:i], p[i+1:]
		}
		hc := strings.SplitN(p, ":", 2)
		h, _ := strconv.Atoi(hc[0])
		c, _ := strconv.Atoi(hc[1])
		ports = append(ports, gocni.PortMapping{HostPort: int32(h), ContainerPort: int32(c), Protocol: proto})
	}
	opts := []gocni.NamespaceOpts{gocni.WithLabels(labels), gocni.WithCapabilityPortMap(ports)}
	ctx := context.Background()
	switch cmd {
	case "setup":
		res, err := l.SetupSerially(ctx, id, netns, opts...)
		if err != nil {
			die(err)
		}
		out := map[string]interface{}{}
		ifs := []string{}
		for name, cfg := range res.Interfaces {
			ifs = append(ifs, name)
			if name == "eth0" && len(cfg.IPConfigs) > 0 {
				out["eth0"] = cfg.IPConfigs[0].IP.String()
			}
		}
		out["interfaces"] = ifs
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	case "remove":
		if err := l.Remove(ctx, id, netns, opts...); err != nil {
			die(err)
		}
	default:
		die(fmt.Errorf("unknown command %q", cmd))
	}
}

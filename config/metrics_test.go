package config

import (
	"strings"
	"testing"
	"time"
)

// The flags of /metrics and the hot keys: --metrics-listen, --hotkeys,
// --hotkeys-window, --hotkeys-sample.

func TestMetricsFlagsParse(t *testing.T) {
	c := mustParse(t)
	if c.MetricsListen != "" || c.HotKeys != 0 || c.HotKeysWindow != time.Minute || c.HotKeysSample != 16 {
		t.Fatalf("defaults: %q %d %v %d", c.MetricsListen, c.HotKeys, c.HotKeysWindow, c.HotKeysSample)
	}
	c = mustParse(t, "--metrics-listen=0.0.0.0:9150", "--hotkeys", "20", "--hotkeys-window=5m", "--hotkeys-sample=1")
	if c.MetricsListen != "0.0.0.0:9150" || c.HotKeys != 20 || c.HotKeysWindow != 5*time.Minute || c.HotKeysSample != 1 {
		t.Fatalf("parsed: %q %d %v %d", c.MetricsListen, c.HotKeys, c.HotKeysWindow, c.HotKeysSample)
	}
	if _, err := Parse([]string{"--hotkeys-window=soon"}, nil); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("--hotkeys-window=soon: %v", err)
	}
	for _, line := range []string{"metrics_listen 0.0.0.0:9150\n", "hotkeys 20\n", "hotkeys_window 5m0s\n", "hotkeys_sample 1\n"} {
		if !strings.Contains(c.String(), line) {
			t.Errorf("String() lacks %q", line)
		}
	}
}

func TestMetricsFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.MetricsListen = "127.0.0.1:9150" }, ""},
		{func(c *Config) { c.MetricsListen = ":9150" }, ""},
		{func(c *Config) { c.MetricsListen = "[::1]:0" }, ""},
		{func(c *Config) { c.MetricsListen = "9150" }, "--metrics-listen: \"9150\" is not host:port"},
		{func(c *Config) { c.MetricsListen = "127.0.0.1:70000" }, "invalid port"},
		{func(c *Config) { c.HotKeys = 100 }, ""},
		{func(c *Config) { c.HotKeys = 101 }, "--hotkeys: 101 is out of range (0 to 100)"},
		{func(c *Config) { c.HotKeys = -1 }, "--hotkeys: -1 is out of range"},
		{func(c *Config) { c.HotKeysWindow = 3 * time.Second }, "--hotkeys-window: 3s is out of range (4s to 24h)"},
		{func(c *Config) { c.HotKeysWindow = 25 * time.Hour }, "--hotkeys-window"},
		{func(c *Config) { c.HotKeysSample = 0 }, "--hotkeys-sample: 0 is out of range (1 to 65536)"},
		{func(c *Config) { c.HotKeysSample = 65537 }, "--hotkeys-sample"},
	} {
		c := Default()
		tc.edit(c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", c.MetricsListen, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

func TestMetricsFlagsUsage(t *testing.T) {
	u := usageText(nil, "")
	for _, want := range []string{
		"--metrics-listen=<addr>   serve Prometheus metrics at http://<addr>/metrics,\n",
		"--hotkeys=<num>           track the <num> hottest keys by requests and by\n",
		"--hotkeys-window=<dur>    the hot keys' sliding window (default: 1m0s)\n",
		"--hotkeys-sample=<num>    count 1 request in <num> for the hot keys (default: 16)\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
}

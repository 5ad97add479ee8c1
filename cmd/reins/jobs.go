package main

import (
	"context"

	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/jobs"
)

// startJobs schedules the jobs of incidents/jobs: every job body lives in
// the domain and takes `now`; the runner locks, times and recovers each run.
func (m *Main) startJobs(ctx context.Context) {
	m.jobs = jobs.New(ctx, m.Store, m.Clock.Now, m.Log)
	m.cron = m.jobs.Cron()
	for _, j := range jobs.List(m.Service, m.Policy, aftermath.NewReminders(m.Service.Core), m.Sessions, m.sweepHeldSpans, m.Log) {
		_, _ = m.jobs.Add(j) // a bad fixed spec is logged; the tests pin every one
	}
	m.scheduleDrills()
	m.jobs.Start()
}

// scheduleDrills (re)creates one job per agent with a drill schedule;
// called at start and after every config reload.
func (m *Main) scheduleDrills() {
	if m.jobs == nil {
		return
	}
	m.jobs.Replace("drills", jobs.Drills(m.Registry.Current(), m.Drills))
}

data "prefect_pushpool_base_job_templates" "this" {}

resource "prefect_work_pool" "cloud_run" {
  name              = "cloud-run"
  type              = "cloud-run-v2"
  base_job_template = data.prefect_pushpool_base_job_templates.this.cloud_run_v2
}

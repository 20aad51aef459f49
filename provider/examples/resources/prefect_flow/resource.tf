resource "prefect_flow" "etl" {
  name = "nightly-etl"
  tags = ["etl"]
}

use clap::Parser;

fn main() {
    let cli = imgsync::cli::Cli::parse();
    std::process::exit(imgsync::app::run(cli).code());
}

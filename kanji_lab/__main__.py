from kanji_lab.train import main

main()

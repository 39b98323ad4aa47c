from kanji_lab.web.cli import main

if __name__ == "__main__":
    main()
